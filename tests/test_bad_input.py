"""Every class of bad input, published through real Mosquitto: a counted reason, and the agent goes on."""

from __future__ import annotations

import json
import time

import pytest

from edge.agent import Agent
from tests.agentkit import Gateway, agent_config, wait_until

pytestmark = pytest.mark.slow

RULES = """
rules:
  - id: gas-high
    match: {metric: ch4_ppm}
    when: {above: 5000}
    category: gas_leak
"""

NOW_MS = int(time.time() * 1000)
BAD = [
    ("bad_json", "gw/grid-01/sensor/gas-01/reading", b'{"ts": 1, "metrics": {'),
    ("bad_json", "gw/grid-01/sensor/gas-01/reading", b"\xff\xfe not utf8"),
    ("bad_json", "gw/grid-01/sensor/gas-01/reading", b"[1, 2, 3]"),
    ("missing_field", "gw/grid-01/sensor/gas-01/reading", {"metrics": {"ch4_ppm": 1}}),
    ("missing_field", "gw/grid-01/sensor/gas-01/reading", {"ts": NOW_MS}),
    ("wrong_type", "gw/grid-01/sensor/gas-01/reading", {"ts": NOW_MS, "metrics": {"ch4_ppm": "high"}}),
    ("wrong_type", "gw/grid-01/sensor/gas-01/reading", {"ts": NOW_MS, "metrics": [1, 2]}),
    ("wrong_type", "gw/grid-01/sensor/gas-01/reading", {"ts": True, "metrics": {"ch4_ppm": 1}}),
    ("not_finite", "gw/grid-01/sensor/gas-01/reading", b'{"ts": %d, "metrics": {"ch4_ppm": NaN}}' % NOW_MS),
    ("not_finite", "gw/grid-01/sensor/gas-01/reading", b'{"ts": %d, "metrics": {"ch4_ppm": Infinity}}' % NOW_MS),
    ("ts_in_future", "gw/grid-01/sensor/gas-01/reading", {"ts": NOW_MS + 3_600_000, "metrics": {"ch4_ppm": 1}}),
    ("bad_ts", "gw/grid-01/sensor/gas-01/reading", {"ts": "yesterday", "metrics": {"ch4_ppm": 1}}),
    ("oversize", "gw/grid-01/sensor/gas-01/reading",
     {"ts": NOW_MS, "metrics": {"ch4_ppm": 1}, "pad": "x" * 5000}),
    ("bad_topic", "gw/grid-01/sensor/gas-01/readings", {"ts": NOW_MS, "metrics": {"ch4_ppm": 1}}),
    ("bad_topic", "gw/grid-01/pump/gas-01/reading", {"ts": NOW_MS, "metrics": {"ch4_ppm": 1}}),
    ("bad_topic", "gw/grid-01/sensor/gas.01/reading", {"ts": NOW_MS, "metrics": {"ch4_ppm": 1}}),
    ("unknown_device", "gw/grid-01/sensor/gas-99/reading", {"ts": NOW_MS, "metrics": {"ch4_ppm": 9000}}),
    ("unknown_device", "gw/grid-02/sensor/gas-01/reading", {"ts": NOW_MS, "metrics": {"ch4_ppm": 9000}}),
    ("bad_field", "gw/grid-01/fence/fence-01/event", {"ts": NOW_MS, "event": "explode"}),
    ("bad_field", "gw/grid-01/sensor/gas-01/status", b"maybe"),
]


@pytest.fixture(scope="module")
def running(tmp_path_factory, broker):
    from tests.recording_hub import RecordingHub

    tmp = tmp_path_factory.mktemp("bad-input")
    hub = RecordingHub().start()
    cfg = agent_config(tmp, broker, hub.url, RULES, limits={"max_payload_bytes": 4096},
                       devices={"strict": True, "list": [{"id": "gas-01", "grid": "grid-01"},
                                                         {"id": "fence-01", "grid": "grid-01", "kind": "fence"}]})
    agent = Agent(cfg)
    agent.start()
    gw = Gateway(broker)
    assert agent.mqtt.wait_connected(10)
    time.sleep(0.2)
    yield agent, gw, hub
    gw.close()
    agent.stop()
    hub.stop()


@pytest.mark.parametrize(("reason", "topic", "payload"), BAD, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(BAD)])
def test_bad_message_is_counted_and_next_good_one_is_processed(running, reason, topic, payload):
    agent, gw, hub = running
    before = agent.metrics.value("gridwatch_edge_rejected_total", reason=reason)
    good_before = agent.metrics.value("gridwatch_edge_messages_total", kind="sensor")
    gw.publish(topic, payload if isinstance(payload, bytes) else json.dumps(payload))
    gw.reading("grid-01", "gas-01", ch4_ppm=100.0)
    assert wait_until(lambda: agent.metrics.value("gridwatch_edge_messages_total", kind="sensor") > good_before)
    assert agent.metrics.value("gridwatch_edge_rejected_total", reason=reason) == before + 1
    assert not [a for a in hub.received if a["device_id"] != "gas-01"]
