"""The demo scenario end to end, every part its own process: Mosquitto, `gridwatch hub serve` (SQLite, the
demo limits of seconds), `gridwatch edge run` and `gridwatch sim run --verify`. Every expected case opens
once with the right category, grid and stamps, nothing else opens, and a case goes yellow → red → escalated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import yaml

from hub.config import hash_key
from simulators.scenario import load_scenario
from simulators.services import free_port, stop_pid, wait_port
from tests.agentkit import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.demo]  # make demo-test (not make test): a minute each, mostly waiting
ROOT = Path(__file__).resolve().parent.parent
EDGE_KEY, OPS_KEY = "e2e-edge-key", "e2e-ops-key"  # test-only keys


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_demo_scenario_verifies_and_a_case_escalates(tmp_path, broker):
    port = free_port()
    hub_cfg = {"database": f"sqlite:///{tmp_path / 'hub.sqlite'}", "listen": {"host": "127.0.0.1", "port": port},
               "org": str(ROOT / "configs/org.yaml"), "sla": str(ROOT / "configs/demo/sla.yaml"),
               "calendars": str(ROOT / "configs/calendars"), "tz": "Asia/Shanghai",
               "keys": [{"name": "edge", "role": "edge", "hash": hash_key(EDGE_KEY)},
                        {"name": "ops", "role": "operator", "unit": "district-a", "hash": hash_key(OPS_KEY)}]}
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(hub_cfg))
    edge_cfg = {"edge_id": "edge-e2e", "mqtt": {"host": broker.host, "port": broker.port, "client_id": "edge-e2e"},
                "rules": str(ROOT / "configs/demo/rules.yaml"), "outbox": {"path": str(tmp_path / "outbox.sqlite")},
                "hub": {"url": f"http://127.0.0.1:{port}", "key_env": "E2E_EDGE_KEY", "backoff_max": "2s"},
                "metrics": {"port": 0}}
    (tmp_path / "edge.yaml").write_text(yaml.safe_dump(edge_cfg))
    env = {**os.environ, "E2E_EDGE_KEY": EDGE_KEY, "GRIDWATCH_HUB_KEY": OPS_KEY}
    gw = [sys.executable, "-m", "gridwatch"]
    hub = subprocess.Popen([*gw, "hub", "serve", "-c", str(tmp_path / "hub.yaml")], env=env)
    agent = subprocess.Popen([*gw, "edge", "run", "-c", str(tmp_path / "edge.yaml")], env=env)
    try:
        wait_port(port, 30, hub)
        url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200, 10)
        sim = subprocess.run([*gw, "sim", "run", str(ROOT / "simulators/scenarios/demo.yaml"), "--verify", "--json",
                              "--broker", f"{broker.host}:{broker.port}", "--hub", url, "--settle", "30"],
                             env=env, capture_output=True, text=True, timeout=180)
        assert sim.stdout.strip(), sim.stderr
        rep = json.loads(sim.stdout.strip().splitlines()[-1])
        assert rep["passed"] and sim.returncode == 0, sim.stderr
        sc = load_scenario(ROOT / "simulators/scenarios/demo.yaml")
        expected = {i.id for i in sc.incidents if i.expect is not None}
        rows = {r["incident"]: r for r in rep["rows"]}
        assert set(rows) == expected  # one row per expected case, no row for an unexpected case
        assert all(0 <= r["latency_s"] < 30 for r in rows.values()), rows

        ops = {"Authorization": f"Bearer {OPS_KEY}"}
        cases = httpx.get(f"{url}/api/v1/cases", headers=ops).json()["cases"]
        by_incident = {}
        for inc in sc.incidents:
            if inc.expect is not None:
                grid = sc.device(inc.device).grid
                hit = [c for c in cases if (c["grid"], c["device"], c["category"]) == (grid, inc.device,
                                                                                       inc.expect.category)]
                assert len(hit) == 1, (inc.id, hit)
                by_incident[inc.id] = hit[0]
                c = hit[0]
                began = rows[inc.id]["began_at"]
                # stamps: the triggering alert's device time lies between the incident and the opening
                assert began - 1.0 <= _ts(c["first_seen"]) <= _ts(c["opened_at"]), (inc.id, c)
                assert abs(_ts(c["first_received"]) - _ts(c["opened_at"])) < 0.01
                assert c["status"] == "open" and c["alert_count"] >= 1
        gas = by_incident["gas-leak"]

        def timeline() -> list:
            return httpx.get(f"{url}/api/v1/cases/{gas['id']}", headers=ops).json()["timeline"]
        assert wait_until(lambda: any(e["action"] == "escalated" for e in timeline()), 60)
        steps = [(e["action"], (e["detail"] or {}).get("light")) for e in timeline()]
        lights = [light for action, light in steps if action == "light"]
        assert lights[:2] == ["yellow", "red"], steps
        assert steps.index(("light", "red")) < [a for a, _ in steps].index("escalated")
        evidence = httpx.get(f"{url}/api/v1/cases/{by_incident['intruder']['id']}", headers=ops).json()["evidence"]
        assert evidence and httpx.get(f"{url}{evidence[0]}", headers=ops).content[:2] == b"\xff\xd8"
    finally:
        stop_pid(agent)
        stop_pid(hub)
