"""Gateway → Mosquitto → edge agent → the real hub (`gridwatch hub serve`) → a case."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import yaml

from edge.agent import Agent
from hub.config import hash_key
from simulators.services import free_port, stop_pid, wait_port
from tests.agentkit import KEY, Gateway, agent_config, wait_until

pytestmark = pytest.mark.slow

RULES = """
rules:
  - id: gas-high
    match: {metric: ch4_ppm}
    when: {above: 5000, clear_below: 4000}
    severity: critical
    category: gas_leak
"""


SLA = """
policies:
  - id: fast
    calendar: 24x7
    limits: {accept: 2s, resolve: 5s, feedback: 5s}
"""


def test_alert_becomes_a_case_at_the_real_hub(tmp_path, broker):
    port = free_port()
    cfg = {"database": f"sqlite:///{tmp_path / 'hub.sqlite'}", "listen": {"host": "127.0.0.1", "port": port},
           "org": str(Path("configs/org.yaml").resolve()), "sla": str(tmp_path / "sla.yaml"),
           "calendars": str(Path("configs/calendars").resolve())}
    cfg["keys"] = [{"name": "edge-t", "role": "edge", "hash": hash_key(KEY)},
                   {"name": "ops", "role": "operator", "unit": "district-a", "hash": hash_key("ops-key")}]
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "sla.yaml").write_text(SLA)
    hub = subprocess.Popen([sys.executable, "-m", "gridwatch", "hub", "serve", "-c", str(tmp_path / "hub.yaml")])
    agent = None
    try:
        wait_port(port, 30, hub)
        url = f"http://127.0.0.1:{port}"
        agent = Agent(agent_config(tmp_path, broker, url, RULES))
        agent.start()
        assert agent.mqtt.wait_connected(10)
        time.sleep(0.2)
        gw = Gateway(broker)
        gw.reading("grid-02", "gas-21", ch4_ppm=7000)
        gw.reading("grid-02", "gas-21", ch4_ppm=100)
        gw.close()
        ops = {"Authorization": "Bearer ops-key"}

        def cases() -> list:
            return httpx.get(f"{url}/api/v1/cases", headers=ops).json()["cases"]
        assert wait_until(lambda: len(cases()) == 1 and cases()[0]["cleared_at"] is not None, 20)
        c = cases()[0]
        assert (c["grid"], c["device"], c["category"], c["owner"], c["status"]) == (
            "grid-02", "gas-21", "gas_leak", "grid-02", "open")
        assert wait_until(lambda: agent.outbox.depth() == 0)
        # the served hub's scheduler turns the light and escalates on time, with no request needed
        def timeline() -> list:
            return httpx.get(f"{url}/api/v1/cases/{c['id']}", headers=ops).json()["timeline"]
        assert wait_until(lambda: any(e["action"] == "escalated" for e in timeline()), 20)
        tl = timeline()
        opened = datetime.fromisoformat(tl[0]["at"])
        yellow = next(e for e in tl if e["action"] == "light" and e["detail"]["light"] == "yellow")
        lag = (datetime.fromisoformat(yellow["at"]) - opened).total_seconds() - 1.0
        assert 0 <= lag < 1.0, lag
        # the light stays red across the backup notice and the escalation: they restart the owner's clock,
        # not the stage's, so the wall never shows a waiting case green again
        assert [e["action"] for e in tl if e["actor"] == "scheduler"][:4] == [
            "light", "light", "backup_notified", "escalated"]
        esc = next(e for e in tl if e["action"] == "escalated")
        assert esc["detail"]["to"] == "community-11"
    finally:
        if agent is not None:
            agent.stop()
        stop_pid(hub)
