"""The fleet end to end with real processes: `gridwatch hub serve`, two `gridwatch edge run` agents sharded
by grid on one Mosquitto, their rules and devices from the hub.

- a rule set deployed to one grid first, then to all, then rolled back: each agent reports the version it
  runs, and the alerts follow the version (the threshold differs); a broken draft is refused with the
  checker's lines; the agents' device lists come from the registry, so neither raises an offline alert for
  the other's devices, and their alerts carry the registry's place;
- an agent killed opens one agent_offline case within the heartbeat limit and its devices turn unknown;
  restarted after twice `stale_for` with readings queued at the broker, it opens no device_offline case.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators.services import Broker, stop_pid
from tests.agentkit import Gateway, wait_until
from tests.hubkit import Hub

pytestmark = [pytest.mark.slow, pytest.mark.e2e]  # make e2e-test: keeps make test inside its ten minutes

SLA = """
policies:
  - id: fleet
    match: {categories: [agent_offline]}
    start_level: district
    calendar: 24x7
    limits: {accept: 1h, resolve: 1h, feedback: 1h}
  - id: default
    calendar: 24x7
    limits: {accept: 1h, resolve: 1h, feedback: 1h}
"""
RULES = """rules:
  - id: gas-high
    match: {metric: ch4_ppm}
    when: {above: THRESHOLD}
    severity: critical
    category: gas_leak
    message: "CH4 {value:.0f} ppm at {device}"
  - id: sensor-silent
    match: {kind: sensor}
    when: {stale_for: 4s}
    severity: minor
    category: device_offline
"""
KEY_A, KEY_B = "fleet-edge-a-key", "fleet-edge-b-key"
GRIDS = {"edge-a": ["grid-01", "grid-02"], "edge-b": ["grid-03", "grid-07"]}
DEVICES = [("gas-01", "grid-01", 30.2821, 120.1533, "和平路1号"), ("gas-02", "grid-02", 30.2822, 120.1591, "和平路2号"),
           ("gas-03", "grid-03", 30.2771, 120.1522, "光明路3号"), ("gas-07", "grid-07", 30.2775, 120.1581, "光明路7号")]


def start_hub(tmp: Path) -> Hub:
    keys = [{"name": "edge-a", "role": "edge", "grids": GRIDS["edge-a"], "key": KEY_A},
            {"name": "edge-b", "role": "edge", "grids": GRIDS["edge-b"], "key": KEY_B}]
    return Hub(tmp / "hub", SLA, keys=keys, fleet={"heartbeat_limit": "4s"}).start()


def agent_yaml(tmp: Path, broker: Broker, hub: Hub, edge: str, key: str) -> Path:
    folder = tmp / edge
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yaml").write_text("rules: []\n")  # the file serves until the hub deploys
    cfg = {"edge_id": edge, "grids": GRIDS[edge],
           "mqtt": {"host": broker.host, "port": broker.port, "client_id": f"fleet-{edge}-{tmp.name}"[:60]},
           "rules": "rules.yaml", "outbox": {"path": "outbox.sqlite", "synchronous": "normal"},
           "hub": {"url": hub.url, "key": key, "key_env": None, "backoff_min": "0.2s", "backoff_max": "1s",
                   "heartbeat": "1s", "fleet": True},
           "metrics": {"port": 0}}
    (folder / "edge.yaml").write_text(yaml.safe_dump(cfg))
    return folder / "edge.yaml"


def run_agent(path: Path) -> subprocess.Popen[bytes]:
    log = open(path.parent / "agent.log", "ab")  # noqa: SIM115 - the process owns it
    return subprocess.Popen([sys.executable, "-m", "gridwatch", "edge", "run", "-c", str(path)], stdout=log,
                            stderr=subprocess.STDOUT)


def agents(hub: Hub) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in hub.get("/api/v1/agents")}


def running(hub: Hub, want: dict[str, int | None], timeout: float = 20.0) -> bool:
    return wait_until(lambda: {k: agents(hub).get(k, {}).get("rule_version") for k in want} == want, timeout, 0.1)


def cases(hub: Hub, category: str) -> list[dict[str, Any]]:
    return hub.get(f"/api/v1/cases?category={category}")["cases"]


def save(hub: Hub, text: str) -> int:
    r = hub.call("POST", "/api/v1/rules", json={"text": text})
    assert r.status_code == 201, r.text
    return int(r.json()["version"])


def deploy(hub: Hub, version: int, grids: list[str] | None = None) -> float:
    r = hub.call("POST", "/api/v1/rules/deploy", json={"version": version, "grids": grids})
    assert r.status_code == 201, r.text
    return time.monotonic()


def register_devices(hub: Hub) -> None:
    for did, grid, lat, lon, address in DEVICES:
        r = hub.call("PUT", f"/api/v1/devices/{did}", json={"id": did, "grid": grid, "lat": lat, "lon": lon,
                                                             "address": address, "name": f"{did} 燃气探测器"})
        assert r.status_code == 200, r.text


def start_fleet(tmp: Path, broker: Broker, hub: Hub, procs: list[subprocess.Popen[bytes]]) -> int:
    """The registry filled, v1 (threshold 5000) deployed to all, both agents running it (appended to
    `procs` as they start, for the caller to stop); returns v1."""
    register_devices(hub)
    v1 = save(hub, RULES.replace("THRESHOLD", "5000"))
    deploy(hub, v1)
    procs += [run_agent(agent_yaml(tmp, broker, hub, "edge-a", KEY_A)),
              run_agent(agent_yaml(tmp, broker, hub, "edge-b", KEY_B))]
    assert running(hub, {"edge-a": v1, "edge-b": v1}), agents(hub)
    return v1


class Publisher:
    """Every device reports every 0.5 s, except the ones told to fall silent."""

    def __init__(self, broker: Broker, name: str) -> None:
        self.gw = Gateway(broker, client_id=f"fleet-gateway-{name}"[:60])
        self.silent: set[str] = set()
        self.level: dict[str, float] = {}

    def round(self) -> None:
        for did, grid, *_ in DEVICES:
            if did not in self.silent:
                self.gw.reading(grid, did, ch4_ppm=self.level.get(did, 100.0))

    def run_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.round()
            time.sleep(0.5)

    def background(self) -> Callable[[], None]:
        """Keep publishing in a thread until the returned function is called."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(0.5):
                self.round()
        th = threading.Thread(target=loop, daemon=True)
        th.start()

        def halt() -> None:
            stop.set()
            th.join(5)
        return halt


def test_staged_deploy_rollback_sharded_devices_and_places(tmp_path, broker):
    hub = start_hub(tmp_path)
    procs: list[subprocess.Popen[bytes]] = []
    pub = Publisher(broker, tmp_path.name)
    try:
        v1 = start_fleet(tmp_path, broker, hub, procs)
        assert {a["devices"] for a in agents(hub).values()} == {2}  # each its own grids' devices
        # both agents watch every registered device of their grids: 8 s of readings, no offline alert
        pub.run_for(8)
        assert cases(hub, "device_offline") == []

        # staged: v2 (threshold 4000) to grid-01 first: only edge-a takes it
        v2 = save(hub, RULES.replace("THRESHOLD", "4000"))
        t0 = deploy(hub, v2, ["grid-01"])
        assert running(hub, {"edge-a": v2, "edge-b": v1}, 10), agents(hub)
        staged_s = time.monotonic() - t0
        pub.level = {"gas-01": 4500.0, "gas-03": 4500.0}
        pub.run_for(1.5)
        assert wait_until(lambda: len(cases(hub, "gas_leak")) == 1, 10)
        time.sleep(1)
        leak = cases(hub, "gas_leak")
        assert [c["device"] for c in leak] == ["gas-01"]  # gas-03's agent still runs v1 (5000)
        assert leak[0]["place"]["address"] == "和平路1号" and leak[0]["place"]["lat"] == 30.2821
        # then everywhere
        deploy(hub, v2)
        assert running(hub, {"edge-a": v2, "edge-b": v2}, 10), agents(hub)
        pub.run_for(1.5)
        assert wait_until(lambda: {c["device"] for c in cases(hub, "gas_leak")} == {"gas-01", "gas-03"}, 10)
        # a broken draft never gets a version
        r = hub.call("POST", "/api/v1/rules", json={"text": RULES.replace("THRESHOLD", "high")})
        assert r.status_code == 422 and any("rules[0].when" in p for p in r.json()["detail"]), r.text
        # rollback to v1 everywhere
        deploy(hub, v1)
        assert running(hub, {"edge-a": v1, "edge-b": v1}, 10), agents(hub)
        # a device that really falls silent is still called offline, once, by its own agent
        pub.level = {}
        pub.silent = {"gas-07"}
        pub.run_for(7)
        offline = cases(hub, "device_offline")
        assert [c["device"] for c in offline] == ["gas-07"], offline
        print(f"staged deploy: {staged_s:.2f}s until the agent reported it")
    finally:
        pub.gw.close()
        for p in procs:
            stop_pid(p)
        hub.stop()


def test_killed_agent_opens_one_case_and_a_restart_raises_no_offline_storm(tmp_path, broker):
    hub = start_hub(tmp_path)
    pub = Publisher(broker, tmp_path.name)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        start_fleet(tmp_path, broker, hub, procs)
        path_a = tmp_path / "edge-a" / "edge.yaml"  # to start edge-a again
        pub.run_for(2)
        halt = pub.background()
        os.kill(procs[0].pid, signal.SIGKILL)  # edge-a dies; the broker keeps its session and queues readings
        procs[0].wait()
        killed = time.monotonic()
        assert wait_until(lambda: len(cases(hub, "agent_offline")) == 1, 15, 0.1)
        took = time.monotonic() - killed
        assert took <= 4 + 1 + 1.5, took  # the limit, a heartbeat's period, the scheduler's second
        states = {d["id"]: d["state"] for d in hub.get("/api/v1/devices")["devices"]}
        assert states == {"gas-01": "unknown", "gas-02": "unknown", "gas-03": "ok", "gas-07": "ok"}, states
        time.sleep(max(0.0, killed + 8.5 - time.monotonic()))  # over 2 x stale_for away; readings wait at the broker
        assert len(cases(hub, "agent_offline")) == 1  # still one
        procs[0] = run_agent(path_a)
        time.sleep(8)
        halt()
        assert cases(hub, "device_offline") == [], cases(hub, "device_offline")
        case = cases(hub, "agent_offline")[0]
        assert wait_until(lambda: hub.get(f"/api/v1/cases/{case['id']}")["cleared_at"] is not None, 10)
        assert {d["state"] for d in hub.get("/api/v1/devices")["devices"]} == {"ok"}
        print(f"agent_offline case {took:.1f}s after the kill")
    finally:
        pub.gw.close()
        for p in procs:
            stop_pid(p)
        hub.stop()
