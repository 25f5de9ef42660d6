"""Nothing lost when any one node dies (issue 31), end to end with real processes: three NATS nodes on
`configs/nats/`, Patroni with etcd and two PostgreSQL 15 on `configs/patroni/`, two `gridwatch hub serve`
replicas on the multi-host URL behind HAProxy on `configs/haproxy/`, the edge agent on MQTT 3.1.1 given every
node, and `gridwatch sim load` gateways (one connection per grid, the shipped grants) at a steady 1,000 readings/s
with a gas leak every five seconds. One at a time: the NATS node every client is on is SIGKILLed, then the
PostgreSQL primary, then the hub replica leading the MQTT publisher. Afterwards every incident is exactly one
case, every alert the agent raised reached the hub once, every escalation step was done once, every case event
went out once per unit topic (at most one batch again across the leader change), no device was called offline,
a board client on the stream got every event once; the reconnect and failover times are printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from gridwatch.core.yamlconf import load
from hub.config import hash_key
from hub.policy.org import Org, OrgFile
from hub.stream.mqtt_events import BATCH
from simulators.services import (
    binary,
    free_port,
    start_haproxy,
    start_nats_cluster,
    start_patroni_cluster,
    stop_pid,
    wait_port,
)
from tests.agentkit import report
from tests.hubkit import EDGE, OPS, ROOT
from tests.needs import missing
from tests.test_broker_nats import USERS, Reader
from tests.test_db_failover import Stream

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
RATE, DEVICES, DURATION, INCIDENTS = 1000, 500, 66.0, 12
KILL_NATS, KILL_PG, KILL_HUB = 12.0, 28.0, 46.0  # seconds into the load
RULES = """
rules:
  - id: gas-high
    match: {metric: ch4_ppm}
    when: {above: 5000}
    severity: critical
    category: gas_leak
  - id: sensor-silent
    match: {kind: sensor}
    when: {stale_for: 60s}
    category: device_offline
"""
# (60 s, half the shipped 120 s: the two grids whose gateway connections were on the killed NATS node reconnect
# while NATS rebuilds their MQTT sessions one at a time, and flush what they held; at 30 s that recovery, measured
# at 11 s for one client alone in tests/test_broker_nats.py, called their 250 devices offline in about half the
# runs, on the main of before issue 42 too. A grid whose gateway never came back is silent from the kill (12 s)
# to the end of the load (66 s) and beyond, and is still called offline.)
SLA = """
policies:
  - id: fast
    calendar: 24x7
    limits: {accept: 4s, resolve: 1h, feedback: 1h}
"""


def metric(body: str, name: str, **labels: str) -> float:
    sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{re.escape('{' + sel + '}') if sel else ''} (\S+)$"
    return sum(float(v) for v in re.findall(pattern, body, re.M))


def scrape(url: str) -> str:
    try:
        return httpx.get(url, headers={"Authorization": f"Bearer {OPS}"}, timeout=2).text
    except httpx.HTTPError:
        return ""


class Hubs:
    """Two hub replicas on the Patroni cluster's multi-host URL, publishing case events through NATS."""

    def __init__(self, tmp: Path, db: str, brokers: list[str]) -> None:
        (tmp / "sla.yaml").write_text(SLA)
        self.cfgs = []
        for i in (0, 1):  # replica i first on node i: the clients spread over the nodes
            nodes = brokers[i:] + brokers[:i]
            host, _, port = nodes[0].rpartition(":")
            self.cfgs.append(tmp / f"hub-{i}.yaml")
            self.cfgs[i].write_text(yaml.safe_dump({
                "database": db, "org": str(ROOT / "configs/org.yaml"), "sla": str(tmp / "sla.yaml"),
                "calendars": str(ROOT / "configs/calendars"), "tz": "Asia/Shanghai",
                "listen": {"trusted_proxies": ["127.0.0.1"]},
                "mqtt": {"host": host, "port": int(port), "protocol": "v311", "username": "hub",
                         "password_env": "GW_HUB_MQTT_PASSWORD", "brokers": nodes[1:]},
                "keys": [{"name": "edge", "role": "edge", "hash": hash_key(EDGE)},
                         {"name": "ops-district", "role": "operator", "unit": "district-a", "hash": hash_key(OPS)}]}))
        self.ports = [free_port(), free_port()]
        self.procs: list[subprocess.Popen[bytes] | None] = [None, None]
        self.env = {**os.environ, "GW_HUB_MQTT_PASSWORD": USERS["hub"]}

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def start(self, i: int) -> None:
        self.procs[i] = subprocess.Popen([sys.executable, "-m", "gridwatch", "hub", "serve", "-c", str(self.cfgs[i]),
                                          "--port", str(self.ports[i])], env=self.env)
        wait_port(self.ports[i], 30, self.procs[i])

    def leader(self) -> int | None:
        for i, p in enumerate(self.procs):
            if p is not None and metric(scrape(f"{self.url(i)}/metrics"), "gridwatch_hub_mqtt_leader") == 1:
                return i
        return None

    def stop(self) -> None:
        for p in self.procs:
            if p is not None:
                stop_pid(p)


class Watch(threading.Thread):
    """Samples the agent (healthz, readings consumed, outbox) ten times a second."""

    def __init__(self, agent: str) -> None:
        super().__init__(daemon=True)
        self.agent, self.samples, self.stop = agent, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                up = httpx.get(f"{self.agent}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                up = False
            body = scrape(f"{self.agent}/metrics")
            self.samples.append((t, up, metric(body, "gridwatch_edge_messages_total", kind="sensor")))
            time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))

    def after(self, t0: float) -> tuple[float | None, float | None]:
        """From t0: seconds until the agent was connected again after having lost its node, and until it
        consumed readings again after that."""
        rows = [s for s in self.samples if s[0] >= t0]
        down = next((i for i, s in enumerate(rows) if not s[1]), None)
        if down is None:
            return None, None
        back = next((i for i in range(down, len(rows)) if rows[i][1]), None)
        if back is None:
            return None, None
        reading = next((rows[i][0] for i in range(back + 1, len(rows)) if rows[i][2] > rows[back][2]), None)
        return rows[back][0] - t0, (reading - t0) if reading else None


def probe(n: int) -> dict:
    now = datetime.now(UTC).isoformat()
    return {"alert_id": f"probe-{n}", "state": "firing", "rule_id": "gas-high", "edge_id": "probe",
            "device_id": f"probe-{n}", "grid_id": "grid-02", "kind": "sensor", "category": "gas_leak",
            "severity": "critical", "started_at": now, "observed_at": now, "value": 9000.0, "message": "CH4",
            "labels": {}, "evidence": {}}


def pg_failover(proxy: str, t0: float) -> dict:
    """Through the proxy, as the agents and the board reach the hubs: seconds until /healthz is 200 again and
    until an alert is taken again, and every answer seen (never a 500)."""
    codes: Counter[int] = Counter()
    healthy = accepted = None
    while accepted is None or healthy is None:
        assert time.monotonic() - t0 < 90, f"the hubs did not come back: {codes}"
        try:
            h = httpx.get(f"{proxy}/healthz", timeout=5)
            codes[h.status_code] += 1
            if h.status_code == 200 and healthy is None:
                healthy = time.monotonic() - t0
            if accepted is None:
                r = httpx.post(f"{proxy}/api/v1/alerts", json={"alerts": [probe(1)]},
                               headers={"Authorization": f"Bearer {EDGE}"}, timeout=10)
                codes[r.status_code] += 1
                if r.status_code == 503:
                    assert r.headers.get("retry-after"), r.headers
                if r.status_code == 200:
                    accepted = time.monotonic() - t0
        except httpx.TransportError:
            codes[0] += 1
        time.sleep(0.2)
    return {"healthz_s": healthy, "accepted_s": accepted, "answers": dict(codes)}


def rows_of(db: str, sql: str) -> list[tuple]:
    eng = create_engine(db)
    try:
        with eng.connect() as c:
            return [tuple(r) for r in c.execute(text(sql))]
    finally:
        eng.dispose()


def settled(read, timeout: float, quiet: float = 3.0) -> bool:
    end, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < end:
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def engines():
    for exe in ("nats-server", "patroni", "etcd", "haproxy"):
        try:
            binary(exe, f"/usr/sbin/{exe}")
        except Exception:  # noqa: BLE001
            missing(f"{exe} is installed by make deps")
    yield


def test_one_node_after_another_dies_under_load_and_nothing_is_lost_or_doubled(tmp_path, engines):
    org = Org(load(OrgFile, ROOT / "configs/org.yaml"))
    nats = start_nats_cluster(tmp_path / "nats", USERS)
    try:
        pg = start_patroni_cluster()
    except BaseException:  # the NATS nodes go too (a failed start left them running past the session)
        nats.stop()
        raise
    hubs = Hubs(tmp_path, pg.url, nats.brokers)
    procs: list[subprocess.Popen[bytes]] = []
    stream = watch = reader = proxy = None
    try:
        hubs.start(0)
        hubs.start(1)
        proxy = start_haproxy([f"127.0.0.1:{p}" for p in hubs.ports], tmp_path / "proxy")
        deadline = time.monotonic() + 30
        while httpx.get(f"{proxy.url}/healthz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        reader = Reader(nats, "viewer", "chaos-viewer", "gw/cases/#", first=2,
                        parse=lambda m: (m.topic, json.loads(m.payload)["id"]))
        reader.start()
        assert reader.subscribed.wait(15)
        stream = Stream(proxy.url)
        stream.start()

        agent_port = free_port()
        (tmp_path / "rules.yaml").write_text(RULES)
        host, _, port = nats.brokers[0].rpartition(":")
        (tmp_path / "edge.yaml").write_text(yaml.safe_dump({
            "edge_id": "edge-a", "rules": str(tmp_path / "rules.yaml"),
            "mqtt": {"host": host, "port": int(port), "protocol": "v311", "username": "edge-a",
                     "password_env": "GW_EDGE_MQTT_PASSWORD", "client_id": "edge-a", "brokers": nats.brokers[1:]},
            "outbox": {"path": str(tmp_path / "outbox.sqlite")},
            "hub": {"url": proxy.url, "key_env": "GRIDWATCH_EDGE_KEY", "backoff_min": "0.2s", "backoff_max": "2s"},
            "metrics": {"port": agent_port}}))
        env = {**os.environ, "GW_EDGE_MQTT_PASSWORD": USERS["edge-a"], "GRIDWATCH_EDGE_KEY": EDGE}
        procs.append(subprocess.Popen([sys.executable, "-m", "gridwatch", "edge", "run", "-c",
                                       str(tmp_path / "edge.yaml")], env=env))
        agent = f"http://127.0.0.1:{agent_port}"
        wait_port(agent_port, 30, procs[-1])
        deadline = time.monotonic() + 30
        while httpx.get(f"{agent}/healthz", timeout=2).status_code != 200:
            assert time.monotonic() < deadline, "the agent did not connect"
            time.sleep(0.2)
        watch = Watch(agent)
        watch.start()

        gw_env = {**env, **{f"PW_{g.upper().replace('-', '_')}": USERS[f"gw-{g}"]
                            for g in ("grid-01", "grid-02", "grid-03", "grid-07")}}
        load_proc = subprocess.Popen(
            [sys.executable, "-m", "gridwatch", "sim", "load", "--broker", ",".join(nats.brokers), "--protocol",
             "v311", "--username", "gw-{grid}", "--password-env", "PW_{GRID}", "--rate", str(RATE), "--devices",
             str(DEVICES), "--duration", str(DURATION), "--incidents", str(INCIDENTS)],
            env=gw_env, stdout=subprocess.PIPE)
        procs.append(load_proc)  # type: ignore[arg-type]
        t_load = time.monotonic()

        def at(s: float) -> None:
            time.sleep(max(0.0, t_load + s - time.monotonic()))

        at(KILL_NATS)  # 1. the node every client is on first
        t_nats = time.monotonic()
        nats.kill(nats.nodes[0])
        at(KILL_PG)  # 2. the PostgreSQL primary's machine
        old = pg.primary()
        assert old is not None
        t_pg = time.monotonic()
        pg.kill(old)
        fo = pg_failover(proxy.url, t_pg)
        at(KILL_HUB)  # 3. the hub replica that leads the MQTT publisher
        leader = hubs.leader()
        assert leader is not None, "no replica leads the MQTT publisher"
        hubs.procs[leader].kill()  # type: ignore[union-attr]
        hubs.procs[leader].wait(10)  # type: ignore[union-attr]
        hubs.procs[leader] = None

        out, _ = load_proc.communicate(timeout=DURATION + 120)
        rep = json.loads(out.decode().strip().splitlines()[-1])
        assert rep["incidents"] == INCIDENTS and rep["published"] == int(RATE * DURATION), rep
        survivor = 1 - leader
        # the readings stopped: the agent sends what it holds and stops before its silence limit (60 s) could
        # call the devices offline for the end of the load
        deadline = time.monotonic() + 12
        while metric(scrape(f"{agent}/metrics"), "gridwatch_edge_outbox_depth") and time.monotonic() < deadline:
            time.sleep(0.2)
        agent_body = scrape(f"{agent}/metrics")
        stop_pid(procs[0])
        assert metric(agent_body, "gridwatch_edge_outbox_depth") == 0, "alerts left in the outbox"
        time.sleep(12)  # the last incident's case escalates step by step (accept limit 4 s)
        db = pg.url

        def caught_up() -> bool:  # every case event so far on MQTT and on the stream
            ids = [r[0] for r in rows_of(db, "SELECT id FROM timeline ORDER BY id")]
            return {i for _, i in list(reader.got)} >= set(ids) and stream.ids[-len(ids):] == ids[-len(stream.ids):]
        deadline = time.monotonic() + 60
        while not caught_up() and time.monotonic() < deadline:
            time.sleep(0.5)
        watch.stop.set()

        raised = metric(agent_body, "gridwatch_edge_alerts_total", rule="gas-high", state="firing")
        silent = metric(agent_body, "gridwatch_edge_alerts_total", rule="sensor-silent", state="firing")
        reconnect, consuming = watch.after(t_nats)
        report(f"\nload: {rep['achieved_rate']} readings/s of {RATE} for {rep['seconds']} s, "
              f"{rep['incidents']} incidents")
        def secs(v: float | None) -> str:
            return "never" if v is None else f"{v:.1f} s"
        report(f"NATS node SIGKILL: agent connected to the next node after {secs(reconnect)}, consuming again after "
               f"{secs(consuming)}")
        report(f"PostgreSQL primary SIGKILL: /healthz 200 again after {fo['healthz_s']:.1f} s, first alert taken "
              f"after {fo['accepted_s']:.1f} s (answers through the proxy {fo['answers']})")

        alerts = rows_of(db, "SELECT alert_id, body->>'device_id', body->>'rule_id' FROM alerts WHERE state = 'firing'")
        events = rows_of(db, "SELECT t.id, t.case_id, t.action, t.detail, c.grid, c.device FROM timeline t "
                             "JOIN cases c ON c.id = t.case_id ORDER BY t.id")
        cases = rows_of(db, "SELECT id, device, category FROM cases")
        incident_cases = Counter(dev for _, dev, cat in cases if cat == "gas_leak" and dev.startswith("load-"))
        report(f"hub replica {leader} (MQTT leader) SIGKILLed; replica {survivor} leads: {hubs.leader() == survivor}; "
              f"{len(cases)} cases, {len(events)} case events, {len(reader.got)} MQTT publishes, "
              f"stream {len(stream.ids)} events with {stream.cuts} cut(s); events by action "
              f"{dict(Counter(e[2] for e in events))}")

        # every incident exactly one case; every alert the agent raised reached the hub, once
        assert len(incident_cases) == INCIDENTS and set(incident_cases.values()) == {1}, incident_cases
        assert raised == INCIDENTS, f"the agent raised {raised} gas alerts for {INCIDENTS} leaks"
        edge_alerts = [a for a in alerts if a[2] == "gas-high" and a[1].startswith("load-")]
        assert len(edge_alerts) == INCIDENTS
        # no device called offline, by the agent or anyone
        assert silent == 0 and not [c for c in cases if c[2] == "device_offline"], "a device was called offline"
        # every escalation step once, each case opened once
        steps = Counter((case, d["from"], d["to"]) for _, case, action, d, _, _ in events if action == "escalated")
        assert steps and set(steps.values()) == {1}, [k for k, n in steps.items() if n > 1]
        opened = Counter(case for _, case, action, _, _, _ in events if action == "opened")
        assert set(opened.values()) == {1} and len(opened) == len(cases)
        # every case event on MQTT once per unit topic above its grid; at most one batch again (leader change)
        counts = Counter(reader.got)
        repeated = {i for (_, i), n in counts.items() if n > 1}
        report(f"case events published again across the leader change: {len(repeated)} (at most {BATCH})")
        assert len(repeated) <= BATCH
        by_event: dict[int, set[str]] = {}
        for topic, ev_id in counts:
            by_event.setdefault(ev_id, set()).add(topic.removeprefix("gw/cases/"))
        ids = [e[0] for e in events]
        assert set(by_event) == set(ids), f"missing on MQTT: {sorted(set(ids) - set(by_event))[:10]}"
        for ev_id, _, _, _, grid, _ in events:
            assert set(org.chain(grid)) <= by_event[ev_id], f"event {ev_id} missing on a unit topic above {grid}"
        # the board client on the proxy: every event once, in order, across all three deaths
        assert stream.ids == ids, (len(stream.ids), len(ids))
        assert fo["healthz_s"] is not None and fo["healthz_s"] <= 30
        assert 500 not in fo["answers"]
        assert reconnect is not None and consuming is not None, "the agent never lost or never regained its node"
    finally:
        for t in (stream, watch):
            if t is not None:
                t.stop.set()
        for p in procs:
            if p.poll() is None:
                stop_pid(p)
        if reader is not None:
            reader.stop()
        if proxy is not None:
            proxy.stop()
        hubs.stop()
        pg.stop()
        nats.stop()
