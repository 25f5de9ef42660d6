"""End to end through real Mosquitto: gateway → agent → outbox → recording hub."""

from __future__ import annotations

import time

import httpx
import pytest

from edge.agent import Agent
from tests.agentkit import Gateway, agent_config, wait_until

pytestmark = pytest.mark.slow

RULES = """
rules:
  - id: gas-high
    match: {kind: sensor, metric: ch4_ppm}
    when: {above: 5000, clear_below: 4000}
    severity: critical
    category: gas_leak
    message: "CH4 {value:.0f} ppm at {device}"
"""


@pytest.fixture
def gateway(broker):
    g = Gateway(broker)
    yield g
    g.close()


def test_reading_becomes_alert_at_the_hub(tmp_path, broker, hub, gateway):
    agent = Agent(agent_config(tmp_path, broker, hub.url, RULES))
    agent.start()
    try:
        assert agent.mqtt.wait_connected(10)
        time.sleep(0.2)
        gateway.reading("grid-01", "gas-03", ch4_ppm=6120.0)
        assert hub.wait_for(1, 15)
        a = next(iter(hub.unique.values()))
        assert a["rule_id"] == "gas-high" and a["device_id"] == "gas-03" and a["grid_id"] == "grid-01"
        assert a["value"] == 6120.0 and a["message"] == "CH4 6120 ppm at gas-03" and a["edge_id"] == "edge-t"
        assert wait_until(lambda: agent.outbox.depth() == 0)
        body = httpx.get(f"http://127.0.0.1:{agent.metrics_port}/metrics").text
        assert 'gridwatch_edge_messages_total{kind="sensor"} 1.0' in body
        assert 'gridwatch_edge_alerts_total{rule="gas-high",state="firing"} 1.0' in body
        assert "gridwatch_edge_outbox_depth 0.0" in body
        assert "gridwatch_edge_forward_latency_seconds_count 1.0" in body
    finally:
        agent.stop()


def test_hub_outage_during_burst_loses_nothing_and_duplicates_nothing(tmp_path, broker, hub, gateway):
    agent = Agent(agent_config(tmp_path, broker, hub.url, RULES, hub={"batch_size": 50}))
    agent.start()
    try:
        assert agent.mqtt.wait_connected(10)
        time.sleep(0.2)
        t0 = time.time() - 600
        devices = [f"gas-{i:03d}" for i in range(100)]
        for d in devices[:20]:
            gateway.reading("grid-01", d, ts=t0, ch4_ppm=9000)
        assert hub.wait_for(20, 15)
        hub.stop()  # the hub goes away for 30 s while the burst goes on
        down_at = time.monotonic()
        for step in range(1, 4):
            for d in devices:
                gateway.reading("grid-01", d, ts=t0 + step, ch4_ppm=9000 if step % 2 else 100)
        assert wait_until(lambda: agent.outbox.depth() > 0, 10)
        time.sleep(max(0.0, 30.0 - (time.monotonic() - down_at)))
        assert len(hub.unique) == 20
        hub.start()
        # 100 devices: firing at step 1 (80 new), resolved at 2, firing again at 3 (new episode)
        assert hub.wait_for(300, 60), len(hub.unique)
        assert wait_until(lambda: agent.outbox.depth() == 0, 10)
        assert hub.duplicates() == {}
        states = [a["state"] for a in hub.unique.values()]
        assert states.count("firing") == 200 and states.count("resolved") == 100
        assert agent.metrics.value("gridwatch_edge_forward_errors_total", reason="unreachable") > 0
    finally:
        agent.stop()
