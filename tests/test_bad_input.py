"""Every class of bad input, published through real Mosquitto: a counted reason, and the agent goes on."""

from __future__ import annotations

import json
import socket
import time

import pytest

from edge.agent import Agent
from tests.agentkit import GAS_RULES, Gateway, agent_config, wait_until

pytestmark = pytest.mark.slow


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
    ("grid_mismatch", "gw/grid-02/sensor/gas-01/reading", {"ts": NOW_MS, "metrics": {"ch4_ppm": 9000}}),
    ("bad_field", "gw/grid-01/fence/fence-01/event", {"ts": NOW_MS, "event": "explode"}),
    ("bad_field", "gw/grid-01/sensor/gas-01/status", b"maybe"),
    # issue 41: watched statuses (JSON) are checked as strictly
    ("bad_field", "gw/grid-01/sensor/gas-01/status", b'{"state": "maybe", "watched_by": "gw-1"}'),
    ("bad_field", "gw/grid-01/sensor/gas-01/status", b'{"state": "online", "watched_by": "../etc"}'),
    ("bad_field", "gw/grid-01/sensor/gas-01/status", b'["online"]'),
    ("bad_json", "gw/grid-01/sensor/gas-01/status", b'{"state": "online"'),
    # issue 16.1: deeply nested JSON raised RecursionError out of json.loads and killed the worker for good
    ("bad_json", "gw/grid-01/sensor/gas-01/reading", b'{"ts": 1, "metrics": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
    ("bad_json", "gw/grid-01/camera/cam-01/frame", b'{"ts": 1, "jpeg_b64": ' + b"[" * 30000 + b"]" * 30000 + b"}"),
]


@pytest.fixture(scope="module")
def running(tmp_path_factory, broker):
    from tests.recording_hub import RecordingHub

    tmp = tmp_path_factory.mktemp("bad-input")
    hub = RecordingHub().start()
    cfg = agent_config(tmp, broker, hub.url, GAS_RULES, limits={"max_payload_bytes": 4096},
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


def test_a_fault_on_one_message_is_kept_and_the_worker_goes_on(running, monkeypatch):
    """A bug hit by one message (here: the engine raising) is counted, kept as a dead message with its
    reason, and acknowledged; the next message is processed. Acknowledged at the broker: when the agent's
    connection drops and its session resumes, Mosquitto hands back what was not acknowledged, and the poison
    message is not among it (it would hit the bug again and count a second internal_error)."""
    agent, gw, hub = running
    real = agent.engine.observe

    def observe(ev):
        if ev.metrics.get("ch4_ppm") == 4242.0:
            raise ZeroDivisionError("a bug")
        return real(ev)

    monkeypatch.setattr(agent.engine, "observe", observe)
    before = agent.metrics.value("gridwatch_edge_rejected_total", reason="internal_error")
    good_before = agent.metrics.value("gridwatch_edge_messages_total", kind="sensor")
    gw.reading("grid-01", "gas-01", ch4_ppm=4242.0)
    gw.reading("grid-01", "gas-01", ch4_ppm=100.0)
    assert wait_until(lambda: agent.metrics.value("gridwatch_edge_messages_total", kind="sensor") >= good_before + 2)
    assert agent.metrics.value("gridwatch_edge_rejected_total", reason="internal_error") == before + 1
    topic, payload, reason = agent.outbox.dead_messages()[-1]
    assert topic == "gw/grid-01/sensor/gas-01/reading" and b"4242" in payload and "ZeroDivisionError" in reason
    dead = len(agent.outbox.dead_messages())
    time.sleep(0.5)  # the committer has acknowledged the batch by now (PUBACK sent)
    resumed = agent.metrics.value("gridwatch_edge_messages_total", kind="sensor")
    subscribed = agent.mqtt.subscriptions  # not `reconnected`: the agent's worker clears that event
    agent.mqtt.client.socket().shutdown(socket.SHUT_RDWR)  # the link drops; paho reconnects to its session
    assert wait_until(lambda: agent.mqtt.subscriptions > subscribed, timeout=15)
    gw.reading("grid-01", "gas-01", ch4_ppm=101.0)
    assert wait_until(lambda: agent.metrics.value("gridwatch_edge_messages_total", kind="sensor") >= resumed + 1)
    time.sleep(0.5)
    assert agent.metrics.value("gridwatch_edge_rejected_total", reason="internal_error") == before + 1
    assert len(agent.outbox.dead_messages()) == dead  # nothing came back from the broker


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the worker is killed on purpose
def test_a_dead_worker_turns_health_red_and_is_restarted(running, monkeypatch):
    import httpx

    agent, gw, hub = running
    url = f"http://127.0.0.1:{agent.metrics_port}/healthz"
    assert httpx.get(url).json() == {"status": "ok", "reason": "ok"}
    real = agent._round
    calls = {"n": 0}

    def dies(batch):
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemExit  # ends the thread, as an error no handler expects would
        return real(batch)

    monkeypatch.setattr(agent, "_stop", agent._stop)  # the watcher must not restart it before we look
    monkeypatch.setattr(agent, "_round", dies)
    monkeypatch.setattr(agent, "supervise", lambda: False)
    assert wait_until(lambda: not agent._threads[0].is_alive())
    r = httpx.get(url)
    assert r.status_code == 503 and r.json()["reason"] == "rule worker is not running"
    monkeypatch.undo()
    assert wait_until(lambda: agent._threads[0].is_alive() and httpx.get(url).status_code == 200)
    assert agent.metrics.value("gridwatch_edge_worker_restarts_total") >= 1
    good_before = agent.metrics.value("gridwatch_edge_messages_total", kind="sensor")
    gw.reading("grid-01", "gas-01", ch4_ppm=100.0)
    assert wait_until(lambda: agent.metrics.value("gridwatch_edge_messages_total", kind="sensor") > good_before)
