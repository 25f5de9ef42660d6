"""The agent with its neighbours: gateway LWT, a broker with password + ACL, VictoriaMetrics, captures."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import Agent
from tests.agentkit import Gateway, agent_config, wait_until
from tests.conftest import USERS

pytestmark = pytest.mark.slow

STALE = """
rules:
  - id: sensor-silent
    match: {kind: sensor}
    when: {stale_for: 120s}
    severity: minor
    category: device_offline
  - id: gas-high
    match: {metric: ch4_ppm}
    when: {above: 5000}
    category: gas_leak
"""


def test_gateway_lwt_offline_raises_stale_alert(tmp_path, broker, hub):
    agent = Agent(agent_config(tmp_path, broker, hub.url, STALE))
    agent.start()
    try:
        assert agent.mqtt.wait_connected(10)
        time.sleep(0.2)
        gw = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        gw.will_set("gw/grid-07/sensor/water-02/status", "offline", qos=1, retain=True)
        gw.connect(broker.host, broker.port, keepalive=5)
        gw.loop_start()
        gw.publish("gw/grid-07/sensor/water-02/status", "online", qos=1, retain=True).wait_for_publish(5)
        gw.publish("gw/grid-07/sensor/water-02/reading",
                   json.dumps({"ts": int(time.time() * 1000), "metrics": {"water_level_m": 1.2}}), qos=1
                   ).wait_for_publish(5)
        gw.loop_stop()
        gw.socket().close()  # the gateway dies without DISCONNECT: the broker publishes its will
        assert hub.wait_for(1, 20)
        a = next(iter(hub.unique.values()))
        assert (a["rule_id"], a["state"], a["device_id"], a["grid_id"]) == (
            "sensor-silent", "firing", "water-02", "grid-07")
        cleaner = Gateway(broker)
        cleaner.publish("gw/grid-07/sensor/water-02/status", b"", retain=True)  # clear the retained will
        cleaner.close()
    finally:
        agent.stop()


def test_broker_with_password_and_acl(tmp_path, secure_broker, hub):
    good = Agent(agent_config(tmp_path / "good", secure_broker, hub.url, STALE,
                              mqtt={"username": "edge", "password": USERS["edge"]}))
    bad = Agent(agent_config(tmp_path / "bad", secure_broker, hub.url, STALE,
                             mqtt={"username": "edge", "password": "wrong"}, metrics=None))
    good.start()
    bad.start()
    try:
        assert good.mqtt.wait_connected(10)
        assert wait_until(lambda: bad.mqtt.last_refusal is not None, 10)
        assert "Not authorized" in bad.mqtt.last_refusal or "Bad user name or password" in bad.mqtt.last_refusal
        gw = Gateway(secure_broker, "gateway", USERS["gateway"])
        gw.reading("grid-01", "gas-01", ch4_ppm=9000)
        assert hub.wait_for(1, 15)
        gw.close()
    finally:
        good.stop()
        bad.stop()


def test_readings_written_to_victoriametrics_and_read_back(tmp_path, broker, hub, victoria):
    agent = Agent(agent_config(tmp_path, broker, hub.url, STALE,
                               influx={"url": victoria.url, "flush_interval": "0.2s", "batch_size": 10}))
    agent.start()
    try:
        assert agent.mqtt.wait_connected(10)
        time.sleep(0.2)
        gw = Gateway(broker)
        t0 = time.time() - 60
        for i in range(5):
            gw.reading("grid-03", "gas-31", ts=t0 + i, ch4_ppm=100.0 + i, temp_c=20.5)
        gw.publish("gw/grid-03/fence/fence-04/event", {"ts": int(t0 * 1000), "zone": "z2", "event": "breach"})
        gw.close()

        def points() -> list:
            return victoria.export('{__name__="sensor_ch4_ppm",device="gas-31"}')
        assert wait_until(lambda: points() and len(points()[0]["values"]) == 5, 20)
        series = points()[0]
        assert series["metric"]["grid"] == "grid-03" and series["values"] == [100.0, 101.0, 102.0, 103.0, 104.0]
        assert series["timestamps"][0] == int(t0 * 1000)
        assert agent.metrics.value("gridwatch_edge_timeseries_errors_total") == 0
    finally:
        agent.stop()


def test_timeseries_outage_never_blocks_rules(tmp_path, broker, hub):
    agent = Agent(agent_config(tmp_path, broker, hub.url, STALE,
                               influx={"url": "http://127.0.0.1:9", "flush_interval": "0.1s", "batch_size": 1}))
    agent.start()
    try:
        assert agent.mqtt.wait_connected(10)
        time.sleep(0.2)
        gw = Gateway(broker)
        gw.reading("grid-01", "gas-01", ch4_ppm=9000)
        assert hub.wait_for(1, 15)
        gw.close()
        assert wait_until(lambda: agent.metrics.value("gridwatch_edge_timeseries_errors_total") > 0, 20)
    finally:
        agent.stop()


def test_record_then_backtest_reproduces_live_alerts(tmp_path, broker, hub):
    capture = tmp_path / "capture.jsonl"
    agent = Agent(agent_config(tmp_path, broker, hub.url, STALE, record={"path": str(capture)}))
    agent.start()
    try:
        assert agent.mqtt.wait_connected(10)
        time.sleep(0.2)
        gw = Gateway(broker)
        t0 = time.time() - 30
        for i, v in enumerate([100, 6000, 6100, 300]):
            gw.reading("grid-01", "gas-05", ts=t0 + i, ch4_ppm=v)
        gw.publish("gw/grid-01/sensor/gas-05/reading", b"not json")
        gw.close()
        assert hub.wait_for(2, 15)
        assert wait_until(lambda: capture.read_text().count("gas-05") == 5)
    finally:
        agent.stop()
    lines = [json.loads(x) for x in capture.read_text().splitlines() if "gas-05" in x]
    assert lines[0]["topic"] == "gw/grid-01/sensor/gas-05/reading" and lines[0]["payload"]["metrics"]["ch4_ppm"] == 100
    out = subprocess.run([sys.executable, "-m", "gridwatch", "rules", "backtest", str(tmp_path / "rules.yaml"),
                          "--input", str(capture), "--json"], capture_output=True, text=True, check=True)
    replayed = [json.loads(x) for x in out.stdout.splitlines()]
    live = sorted((a["alert_id"], a["state"]) for a in hub.unique.values())
    assert sorted((a["alert_id"], a["state"]) for a in replayed if a["rule_id"] == "gas-high") == live
    assert "gas-high" in out.stderr and "bad_json" in out.stderr
