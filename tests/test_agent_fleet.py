"""An agent's side of the fleet, in process against a real hub app served over HTTP: the assignment is
pulled, applied and reported; it is kept in the outbox, so the agent starts on it with the hub away; a
rule set the agent refuses keeps its last good rules and its reasons reach the hub; alerts carry the
registry's place; the hub's backtest runs a draft on a recorded capture."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx

from edge.agent import Agent
from edge.message import Message
from gridwatch.ruletools import EdgeRuleTools
from hub.boot.app import create_app
from hub.config import ApiKey, HubConfig, hash_key
from tests.agentkit import agent_config
from tests.hubkit import serve_in_thread

OPS, EDGE = "fleet-ops-key", "fleet-edge-key"
RULES = "rules:\n  - id: gas-high\n    match: {metric: ch4_ppm}\n    when: {above: 5000}\n    severity: critical\n" \
        "    category: gas_leak\n"


def start_hub(tmp: Path):
    keys = [ApiKey(name="ops", role="operator", unit="district-a", hash=hash_key(OPS)),
            ApiKey(name="edge", role="edge", hash=hash_key(EDGE), grids=["grid-01", "grid-02"])]
    (tmp / "captures").mkdir(parents=True)
    cfg = HubConfig(database=f"sqlite:///{tmp / 'hub.sqlite'}", keys=keys,
                    fleet={"captures": str(tmp / "captures")}).resolved(Path("configs"))
    port, stop = serve_in_thread(create_app(cfg, run_scheduler=False, rule_tools=EdgeRuleTools()))
    return f"http://127.0.0.1:{port}", stop


def call(url: str, method: str, path: str, **kw) -> httpx.Response:
    r = httpx.request(method, url + path, headers={"Authorization": f"Bearer {OPS}"}, timeout=30, **kw)
    assert r.status_code < 300, r.text
    return r


def reading(device: str, value: float, grid: str = "grid-01") -> Message:
    body = {"ts": datetime.now(UTC).isoformat(), "metrics": {"ch4_ppm": value}}
    return Message(f"gw/{grid}/sensor/{device}/reading", json.dumps(body).encode(), received_at=datetime.now(UTC)
                   .timestamp())


def test_assignment_applied_kept_refused_and_placed(tmp_path, broker):
    url, stop_hub = start_hub(tmp_path / "hub")
    try:
        call(url, "PUT", "/api/v1/devices/gas-01", json={"id": "gas-01", "grid": "grid-01", "lat": 30.28,
                                                         "lon": 120.15, "address": "和平路1号"})
        call(url, "PUT", "/api/v1/devices/gas-09", json={"id": "gas-09", "grid": "grid-03"})  # another agent's
        v = call(url, "POST", "/api/v1/rules", json={"text": RULES}).json()["version"]
        call(url, "POST", "/api/v1/rules/deploy", json={"version": v})
        cfg = agent_config(tmp_path / "edge", broker, url, "rules: []\n", grids=["grid-01", "grid-02"],
                           hub={"key": EDGE, "fleet": True, "heartbeat": None})
        agent = Agent(cfg)
        assert agent.fleet is not None and agent.fleet.poll(wait=0)
        agent.step([])  # the worker's next round takes them
        assert agent.rule_version == v and "gas-high" in agent.engine.rules.rules
        assert set(agent.listed) == {"gas-01"}  # its grids' devices only
        alerts = agent.step([reading("gas-01", 6000)])
        assert alerts[0].place is not None and alerts[0].place.address == "和平路1号"
        assert agent.fleet.beat()
        seen = call(url, "GET", "/api/v1/agents").json()[0]
        assert (seen["id"], seen["rule_version"], seen["devices"], seen["problem"]) == ("edge-t", v, 1, "")
        # a set this agent refuses (as an older agent might): last good kept, the reasons reported
        assert "rules[0]" in agent.apply_rules(v + 1, RULES.replace("5000", "lots"))
        agent.step([])
        assert agent.rule_version == v and agent.fleet.beat()
        assert "rules[0].when.above" in call(url, "GET", "/api/v1/agents").json()[0]["problem"]
        agent.stop()
    finally:
        stop_hub()
    # the hub is away: a restarted agent runs what it was assigned, kept in its outbox
    agent = Agent(cfg)
    try:
        assert agent.rule_version == v and "gas-high" in agent.engine.rules.rules and "gas-01" in agent.places
        resolved = agent.step([reading("gas-01", 100)])  # the episode fired before the restart ends now
        assert resolved[0].state == "resolved" and resolved[0].place is not None  # the place survives too
    finally:
        agent.stop()


def test_draft_backtested_on_a_recorded_capture(tmp_path):
    url, stop_hub = start_hub(tmp_path / "hub")
    try:
        lines = [{"topic": "gw/grid-01/sensor/gas-01/reading", "received_at": f"2026-11-25T01:00:0{i}.000Z",
                  "payload": {"ts": f"2026-11-25T01:00:0{i}.000Z", "metrics": {"ch4_ppm": 4000 + 1000 * i}}}
                 for i in range(4)]
        (tmp_path / "hub/captures/night.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
        assert call(url, "GET", "/api/v1/rules/captures").json() == ["night.jsonl"]
        r = call(url, "POST", "/api/v1/rules/backtest", json={"text": RULES, "capture": "night.jsonl"}).json()
        assert r["messages"] == 4 and r["per_rule"] == {"gas-high firing": 1}, r
        lower = call(url, "POST", "/api/v1/rules/backtest",
                     json={"text": RULES.replace("5000", "3000"), "capture": "night.jsonl"}).json()
        assert lower["first"][0]["observed_at"] == "2026-11-25T01:00:00.000Z"  # fires at the first reading now
        bad = httpx.post(url + "/api/v1/rules/backtest", headers={"Authorization": f"Bearer {OPS}"},
                         json={"text": RULES, "capture": "../hub.sqlite"})
        assert bad.status_code == 422  # no path out of the captures folder
    finally:
        stop_hub()


def test_device_taken_out_of_the_registry_is_forgotten(tmp_path, broker):
    url, stop_hub = start_hub(tmp_path / "hub")
    try:
        for did in ("gas-01", "gas-02"):
            call(url, "PUT", f"/api/v1/devices/{did}", json={"id": did, "grid": "grid-01"})
        silent = RULES + ("  - id: silent\n    match: {kind: sensor}\n    when: {stale_for: 60s}\n"
                          "    severity: minor\n    category: device_offline\n")
        v = call(url, "POST", "/api/v1/rules", json={"text": silent}).json()["version"]
        call(url, "POST", "/api/v1/rules/deploy", json={"version": v})
        cfg = agent_config(tmp_path / "edge", broker, url, "rules: []\n", grids=["grid-01"],
                           hub={"key": EDGE, "fleet": True, "heartbeat": None})
        agent = Agent(cfg)
        try:
            agent.fleet.poll(wait=0)
            agent.step([])
            assert {st["dev"] for st in agent.engine.states.values()} == {"gas-01", "gas-02"}  # watched for silence
            assert agent.step([reading("gas-01", 6000)])[0].state == "firing"
            call(url, "DELETE", "/api/v1/devices/gas-01")  # decommissioned
            assert agent.fleet.poll(wait=0)
            out = agent.step([])
            assert [(a.device_id, a.state) for a in out] == [("gas-01", "resolved")]
            assert {st["dev"] for st in agent.engine.states.values()} == {"gas-02"}
            assert agent.engine.next_deadline() is not None  # gas-02's silence timer still runs
        finally:
            agent.stop()
    finally:
        stop_hub()
