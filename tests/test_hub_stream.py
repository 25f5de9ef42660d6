"""The SSE stream from a served hub: events arrive live, filtered to the caller's subtree, resumable."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from hub.boot.app import create_app
from hub.config import ApiKey, HubConfig, hash_key
from simulators.services import free_port, wait_port
from tests.test_hub_api import alert

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path):
    keys = [ApiKey(name="edge", role="edge", hash=hash_key("k-edge")),
            ApiKey(name="v1", role="viewer", unit="grid-01", hash=hash_key("k-v1")),
            ApiKey(name="ops", role="operator", unit="district-a", hash=hash_key("k-ops"))]
    cfg = HubConfig(database=f"sqlite:///{tmp_path / 'hub.sqlite'}", keys=keys).resolved(Path("configs"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cfg, run_scheduler=False), host="127.0.0.1", port=port,
                                           log_level="warning", timeout_graceful_shutdown=1))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    wait_port(port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    t.join(10)


def read_events(url: str, key: str, n: int, out: list, headers: dict | None = None) -> None:
    with httpx.stream("GET", f"{url}/api/v1/stream", headers={"Authorization": f"Bearer {key}", **(headers or {})},
                      timeout=10) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
                if len(out) >= n:
                    return


def test_stream_live_and_scoped_and_resumable(served):
    mine, everything = [], []
    readers = [threading.Thread(target=read_events, args=(served, "k-v1", 1, mine), daemon=True),
               threading.Thread(target=read_events, args=(served, "k-ops", 2, everything), daemon=True)]
    for r in readers:
        r.start()
    time.sleep(0.5)
    edge = {"Authorization": "Bearer k-edge"}
    httpx.post(f"{served}/api/v1/alerts", json={"alerts": [alert("x3", grid="grid-03")]}, headers=edge)
    httpx.post(f"{served}/api/v1/alerts", json={"alerts": [alert("x1", grid="grid-01")]}, headers=edge)
    for r in readers:
        r.join(10)
    assert [(e["event"], e["grid"]) for e in everything] == [("case_opened", "grid-03"), ("case_opened", "grid-01")]
    assert [(e["event"], e["grid"]) for e in mine] == [("case_opened", "grid-01")]
    again: list = []
    read_events(served, "k-ops", 1, again, {"Last-Event-ID": str(everything[0]["id"])})
    assert again[0]["id"] == everything[1]["id"]
    assert httpx.get(f"{served}/api/v1/stream", headers=edge).status_code == 403
    assert httpx.get(f"{served}/api/v1/stream").status_code == 401


def test_case_events_published_to_mqtt_per_unit(tmp_path, broker):
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    got: list[tuple[str, dict]] = []
    sub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    sub.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
    sub.connect(broker.host, broker.port)
    sub.subscribe("gw/cases/#", qos=1)
    sub.loop_start()
    keys = [ApiKey(name="edge", role="edge", hash=hash_key("k-edge"))]
    cfg = HubConfig(database=f"sqlite:///{tmp_path / 'hub.sqlite'}", keys=keys,
                    mqtt={"host": broker.host, "port": broker.port}).resolved(Path("configs"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cfg, run_scheduler=False), host="127.0.0.1", port=port,
                                           log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        wait_port(port)
        time.sleep(0.5)
        httpx.post(f"http://127.0.0.1:{port}/api/v1/alerts", json={"alerts": [alert("m1", grid="grid-03")]},
                   headers={"Authorization": "Bearer k-edge"})
        deadline = time.monotonic() + 10
        while len(got) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(t for t, _ in got) == ["gw/cases/community-21", "gw/cases/district-a", "gw/cases/grid-03",
                                             "gw/cases/street-2"]
        assert all(ev["event"] == "case_opened" and ev["grid"] == "grid-03" for _, ev in got)
    finally:
        server.should_exit = True
        t.join(10)
        sub.loop_stop()
        sub.disconnect()


def test_light_changes_reach_the_stream_within_a_second_of_the_boundary(tmp_path):
    from datetime import datetime

    (tmp_path / "sla.yaml").write_text("policies:\n  - id: fast\n    limits: {accept: 2s, resolve: 9s, feedback: 9s}\n")
    keys = [ApiKey(name="edge", role="edge", hash=hash_key("k-edge")),
            ApiKey(name="ops", role="operator", unit="district-a", hash=hash_key("k-ops"))]
    cfg = HubConfig(database=f"sqlite:///{tmp_path / 'hub.sqlite'}", keys=keys,
                    sla=tmp_path / "sla.yaml").resolved(Path("configs"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_port(port)
        got: list[tuple[float, dict]] = []

        def reader() -> None:
            with httpx.stream("GET", f"{url}/api/v1/stream", headers={"Authorization": "Bearer k-ops"},
                              timeout=15) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        got.append((time.time(), json.loads(line[6:])))
                        if sum(1 for _, e in got if e["event"] in ("light_changed", "escalated")) >= 3:
                            return

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        time.sleep(0.5)
        httpx.post(f"{url}/api/v1/alerts", json={"alerts": [alert("f1", grid="grid-03")]},
                   headers={"Authorization": "Bearer k-edge"})
        th.join(15)
        opened = datetime.fromisoformat(next(e for _, e in got if e["event"] == "case_opened")["at"]).timestamp()
        lights = [(arrived, e["detail"]["light"]) for arrived, e in got if e["event"] == "light_changed"]
        assert [light for _, light in lights] == ["yellow", "red"]  # red escalates; the stage clock stays red
        for (arrived, light), boundary in zip(lights[:2], (1.0, 2.0), strict=True):
            assert 0 <= arrived - (opened + boundary) < 1.0, (light, arrived - opened)
        assert any(e["event"] == "escalated" and e["detail"]["to"] == "community-21" for _, e in got)
    finally:
        server.should_exit = True
        t.join(10)
