"""PostgreSQL that fails over (issue 31): etcd and two Patroni-run PostgreSQL nodes on `configs/patroni/` as
shipped (a primary and a synchronous standby), a real `gridwatch hub serve` on the multi-host URL with
target_session_attrs=read-write. The primary's machine dies (Patroni and PostgreSQL SIGKILLed): every alert
acknowledged before is there after (synchronous replication), the hub answers 503 with Retry-After and never
500 in between, `/healthz` is 200 again within 30 s and alerts are taken again (times printed), the scheduler
takes up on the new primary (a new case's light turns red on time), and a stream client resuming with
Last-Event-ID gets every event of the timeline once, with no gap."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import create_engine, text

from simulators.services import binary, start_patroni_cluster
from tests.agentkit import report
from tests.hubkit import EDGE, OPS, Hub
from tests.needs import missing

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
SLA = """
policies:
  - id: fast
    calendar: 24x7
    limits: {accept: 4s, resolve: 1h, feedback: 1h}
    yellow_at: 0.5
"""


def alert(n: int) -> dict:
    now = datetime.now(UTC).isoformat()
    return {"alert_id": f"fo-{n:05d}", "state": "firing", "rule_id": "gas-high", "edge_id": "edge-f",
            "device_id": f"gas-{n}", "grid_id": "grid-01", "kind": "sensor", "category": "gas_leak",
            "severity": "critical", "started_at": now, "observed_at": now, "value": 6200.0, "message": "CH4",
            "labels": {}, "evidence": {}}


class Stream(threading.Thread):
    """A board client on the event stream, resuming with Last-Event-ID whenever the stream breaks."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.ids, self.stop, self.cuts = url, [], threading.Event(), 0

    def run(self) -> None:
        while not self.stop.is_set():
            headers = {"Authorization": f"Bearer {OPS}", "Last-Event-ID": str(self.ids[-1] if self.ids else 0)}
            try:
                with httpx.stream("GET", f"{self.url}/api/v1/stream", headers=headers,
                                  timeout=httpx.Timeout(5, read=2)) as r:
                    if r.status_code != 200:
                        self.cuts += 1
                        time.sleep(0.5)
                        continue
                    for line in r.iter_lines():
                        if line.startswith("data: "):
                            self.ids.append(json.loads(line[6:])["id"])
                        if self.stop.is_set():
                            return
            except httpx.ReadTimeout:
                continue
            except httpx.TransportError:
                self.cuts += 1
                time.sleep(0.5)


@pytest.fixture
def patroni(tmp_path):
    for exe in ("patroni", "etcd"):
        try:
            binary(exe)
        except Exception:  # noqa: BLE001
            missing(f"{exe} is installed by make deps (Debian's patroni, etcd-server)")
    c = start_patroni_cluster()
    yield c
    c.stop()


def test_the_hub_rides_a_primary_failover_without_losing_an_acknowledged_alert(tmp_path, patroni):
    hub = Hub(tmp_path / "hub", SLA, patroni.url).start()
    stream = Stream(hub.url)
    try:
        stream.start()
        before = [hub.post([alert(n)])[0]["case_id"] for n in range(20)]  # each acknowledged by the hub
        old = patroni.primary()
        assert old is not None
        patroni.kill(old)
        t0 = time.monotonic()
        codes: dict[int, int] = {}
        healthy = accepted = None
        n = 100
        while accepted is None or healthy is None:  # both: the switch can come between the two requests
            assert time.monotonic() - t0 < 60, codes
            try:
                h = httpx.get(f"{hub.url}/healthz", timeout=5)
                codes[h.status_code] = codes.get(h.status_code, 0) + 1
                if h.status_code == 200 and healthy is None:
                    healthy = time.monotonic() - t0
                if accepted is None:
                    r = httpx.post(f"{hub.url}/api/v1/alerts", json={"alerts": [alert(n)]},
                                   headers={"Authorization": f"Bearer {EDGE}"}, timeout=10)
                    codes[r.status_code] = codes.get(r.status_code, 0) + 1
                    if r.status_code == 503:
                        assert r.headers.get("retry-after"), r.headers
                    if r.status_code == 200:
                        accepted = time.monotonic() - t0
                        after_case = r.json()["results"][0]["case_id"]
            except httpx.TransportError:
                codes[0] = codes.get(0, 0) + 1
            time.sleep(0.2)
        new = patroni.primary()
        report(f"primary {old.name} killed: /healthz 200 again after {healthy:.1f} s, first alert accepted after "
              f"{accepted:.1f} s, new primary {new.name if new else None}; answers {codes}")
        assert 500 not in codes and set(codes) <= {0, 200, 503}, codes
        assert healthy is not None and healthy <= 30
        assert new is not None and new.name != old.name
        for case_id in before:  # synchronous replication: every acknowledged alert's case survived
            assert hub.get(f"/api/v1/cases/{case_id}")["id"] == case_id
        # the scheduler took up on the new primary: it writes the new case's red light on its timeline (the light
        # a read shows is computed at the read, so only the scheduler's own entry shows the scheduler running)
        def scheduled_red() -> bool:
            return any(e["action"] == "light" and e["actor"] == "scheduler" and e["detail"].get("light") == "red"
                       for e in hub.get(f"/api/v1/cases/{after_case}")["timeline"])
        deadline = time.monotonic() + 20
        while not scheduled_red():
            assert time.monotonic() < deadline, hub.get(f"/api/v1/cases/{after_case}")
            time.sleep(0.5)
        # the stream: every event of the timeline, once, in order, with no gap
        eng = create_engine(patroni.url)
        with eng.connect() as c:
            ids = [int(r[0]) for r in c.execute(text("SELECT id FROM timeline ORDER BY id"))]
        eng.dispose()
        deadline = time.monotonic() + 20
        while len(stream.ids) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.2)
        report(f"stream: {len(stream.ids)} events, {stream.cuts} cut(s), timeline {len(ids)}")
        assert stream.ids[:len(ids)] == ids and len(stream.ids) == len(set(stream.ids))
    finally:
        stream.stop.set()
        hub.stop()
