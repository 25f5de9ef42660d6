"""Real gateway payloads through real Mosquitto into a running agent, one feed preset each.

Where each payload shape comes from (the shapes, not the values, are the projects' own):
- Zigbee2MQTT: zigbee2mqtt.io, "MQTT Topics and Messages" (`zigbee2mqtt/FRIENDLY_NAME`, a JSON object of
  exposes, `last_seen` with `advanced.last_seen: ISO_8601`; `bridge/state` `{"state": "online"}`).
- Tasmota: tasmota.github.io/docs/MQTT, telemetry `tele/%topic%/SENSOR` (`{"Time":"2021-01-01T12:00:00",
  "AM2301":{"Temperature":..,"Humidity":..,"DewPoint":..},"TempUnit":"C"}`); LWT `Online` / `Offline`.
- ThingsBoard IoT gateway: thingsboard.io/docs/reference/gateway-mqtt-api (`v1/gateway/telemetry`
  `{"Device A": [{"ts": 1483228800000, "values": {"temperature": 42}}]}`, `v1/gateway/disconnect`).
- Huawei Cloud IoTDA: "Device Reporting Properties" (`$oc/devices/{device_id}/sys/properties/report`,
  `{"services":[{"service_id":"Temperature","properties":{"value":57},"event_time":"20151212T121212Z"}]}`).
- OneNET: OneJSON 物模型 "设备属性上报" (`$sys/{pid}/{device-name}/thing/property/post`,
  `{"id":"123","version":"1.0","params":{"temperature":{"value":30.5,"time":1599534283111}}}`).
- Home Assistant: MQTT Statestream (`homeassistant/sensor/<entity>/state`, the state as text).
- Sparkplug B: Eclipse Sparkplug 3.0 topics; payloads built with gridwatch.core.sparkplug (NBIRTH with bdSeq,
  DBIRTH with aliases, DDATA by alias, NDEATH).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import Agent
from gridwatch.core import sparkplug as spb
from tests.agentkit import Gateway, agent_config, wait_until

pytestmark = pytest.mark.slow

RULES = """
rules:
  - id: hot
    match: {metric: temperature}
    when: {above: 50}
    category: fire
  - id: tasmota-hot
    match: {metric: AM2301_Temperature}
    when: {above: 50}
    category: fire
  - id: gas
    match: {metric: ch4_ppm}
    when: {above: 5000}
    category: gas_leak
  - id: spb-gas
    match: {metric: Sensors_CH4}
    when: {above: 5000}
    category: gas_leak
  - id: ha-level
    match: {metric: state, devices: [river_level]}
    when: {above: 2.5}
    category: flood
  - id: silent
    match: {kind: sensor}
    when: {stale_for: 1h}
    category: device_offline
"""

FEEDS = [
    {"preset": "zigbee2mqtt", "grid": "grid-01"},
    {"preset": "tasmota", "grid": "grid-02"},
    {"preset": "thingsboard-gateway", "grid": "grid-03", "availability": "gateways/tb-1/lwt"},
    {"preset": "huawei-iotda", "grid": "grid-04"},
    {"preset": "onenet", "grid": "grid-05"},
    {"preset": "homeassistant", "grid": "grid-06"},
    {"preset": "sparkplug-b", "grid": "{group}"},
]

M = spb.M


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def firing(hub, rule: str, device: str) -> dict | None:
    return next((a for a in hub.unique.values() if a["rule_id"] == rule and a["device_id"] == device
                 and a["state"] == "firing"), None)


def of_state(hub, rule: str, device: str, state: str) -> dict | None:
    return next((a for a in hub.unique.values() if a["rule_id"] == rule and a["device_id"] == device
                 and a["state"] == state), None)


def metrics_text(agent: Agent) -> str:
    return httpx.get(f"http://127.0.0.1:{agent.metrics_port}/metrics").text


@pytest.fixture
def gateway(broker):
    g = Gateway(broker)
    yield g
    g.close()


@pytest.fixture
def agent(tmp_path, broker, hub):
    a = Agent(agent_config(tmp_path, broker, hub.url, RULES, feeds=FEEDS))
    a.start()
    assert a.mqtt.wait_connected(10)
    time.sleep(0.2)
    yield a
    a.stop()


def spb_node(gateway: Gateway, group: str, node: str, bdseq: int, devices: dict[str, float],
             at: float | None = None) -> None:
    now = int((time.time() if at is None else at) * 1000)
    gateway.publish(f"spBv1.0/{group}/NBIRTH/{node}", spb.encode([
        M("bdSeq", spb.INT64, bdseq, now), M("Node Control/Rebirth", spb.BOOLEAN, False, now)], now, seq=0))
    for i, (dev, ch4) in enumerate(devices.items(), 1):
        gateway.publish(f"spBv1.0/{group}/DBIRTH/{node}/{dev}", spb.encode([
            M("Sensors/CH4", spb.DOUBLE, ch4, now, alias=i * 10)], now, seq=i))


def test_every_preset_maps_real_payloads_and_a_rule_fires(agent, hub, gateway):
    t = float(int(time.time()) - 60)
    gateway.publish("zigbee2mqtt/kitchen_smoke", {"battery": 97, "smoke": False, "linkquality": 116,
                                                  "temperature": 61.5, "voltage": 3000, "last_seen": iso(t)})
    local = datetime.fromtimestamp(t, UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    gateway.publish("tele/tasmota_1A2B3C/SENSOR", {
        "Time": local.replace(tzinfo=None).isoformat(timespec="seconds"),
        "AM2301": {"Temperature": 58.0, "Humidity": 45.6, "DewPoint": 11.1}, "TempUnit": "C"})
    gateway.publish("v1/gateway/telemetry", {"Boiler Room": [{"ts": int(t * 1000) + 1,
                                                              "values": {"temperature": 71, "humidity": 20}}],
                                             "Store": [{"ts": int(t * 1000), "values": {"temperature": 20}}]})
    gateway.publish("$oc/devices/64a1b2_gas01/sys/properties/report", {"services": [
        {"service_id": "GasSensor", "properties": {"ch4_ppm": 6200, "battery": 88},
         "event_time": datetime.fromtimestamp(t, UTC).strftime("%Y%m%dT%H%M%SZ")}]})
    gateway.publish("$sys/p8Xk2/boiler-7/thing/property/post", {"id": "123", "version": "1.0", "params": {
        "temperature": {"value": 88.5, "time": int(t * 1000) + 2}, "power": {"value": "on", "time": int(t * 1000)}}})
    gateway.publish("homeassistant/sensor/river_level/state", "2.9")
    spb_node(gateway, "grid-07", "plc-1", 0, {"gas-a": 10.0}, at=t)
    now = int(t * 1000) + 3
    gateway.publish("spBv1.0/grid-07/DDATA/plc-1/gas-a", spb.encode([
        M(None, spb.DOUBLE, 7200.0, now, alias=10)], now, seq=3))

    expect = {  # (rule, device): grid, value, device time
        ("hot", "kitchen_smoke"): ("grid-01", 61.5, t),
        ("tasmota-hot", "tasmota_1A2B3C"): ("grid-02", 58.0, t),
        ("gas", "64a1b2_gas01"): ("grid-04", 6200.0, t),
        ("hot", "boiler-7"): ("grid-05", 88.5, t + 0.002),
        ("spb-gas", "gas-a"): ("grid-07", 7200.0, t + 0.003),
    }
    assert wait_until(lambda: all(firing(hub, r, d) for r, d in expect), 20), sorted(
        (a["rule_id"], a["device_id"]) for a in hub.unique.values())
    for (rule, dev), (grid, value, ts) in expect.items():
        a = firing(hub, rule, dev)
        assert (a["grid_id"], a["value"]) == (grid, value), a
        assert a["observed_at"] == iso(ts), (rule, a["observed_at"], iso(ts))
    boiler = next(a for a in hub.unique.values() if a["rule_id"] == "hot" and a["grid_id"] == "grid-03")
    assert boiler["device_id"].startswith("Boiler_Room-") and boiler["value"] == 71.0  # "Boiler Room" as an id
    assert boiler["observed_at"] == iso(t + 0.001)
    assert not any(a["device_id"].startswith("Store-") for a in hub.unique.values() if a["rule_id"] == "hot")
    river = firing(hub, "ha-level", "river_level")
    assert river is not None and river["grid_id"] == "grid-06" and river["value"] == 2.9
    assert abs(datetime.fromisoformat(river["observed_at"]).timestamp() - time.time()) < 30  # receive time


def test_gateway_offline_marks_all_its_devices_and_its_return_restores_them(agent, hub, gateway):
    for dev in ("door_1", "door_2", "pir_3"):
        gateway.publish(f"zigbee2mqtt/{dev}", {"contact": True, "battery": 90})
    assert wait_until(lambda: all(f"silent|{d}|" in agent.engine.states for d in ("door_1", "door_2", "pir_3")))
    gateway.publish("zigbee2mqtt/bridge/state", {"state": "offline"}, retain=True)
    # one alert for the gateway, naming its devices; no alert per device
    assert wait_until(lambda: firing(hub, "silent", "zigbee2mqtt") is not None)
    a = firing(hub, "silent", "zigbee2mqtt")
    assert a["grid_id"] == "grid-01" and a["labels"]["devices"] == "3"
    assert a["labels"]["device_ids"] == "door_1,door_2,pir_3" and "其下 3 台设备无法连接" in a["message"]
    states = [agent.engine.states[f"silent|{d}|"]["d"] for d in ("door_1", "door_2", "pir_3")]
    assert all(s["stale"] and s["via"] == "zigbee2mqtt" for s in states)
    time.sleep(0.3)
    assert not any(x["device_id"] in ("door_1", "door_2", "pir_3") for x in hub.unique.values())

    gateway.publish("zigbee2mqtt/bridge/state", {"state": "online"}, retain=True)
    assert wait_until(lambda: of_state(hub, "silent", "zigbee2mqtt", "resolved") is not None)
    assert wait_until(lambda: not any(agent.engine.states[f"silent|{d}|"]["d"]["stale"]
                                      for d in ("door_1", "door_2", "pir_3")))
    assert all("via" not in agent.engine.states[f"silent|{d}|"]["d"] for d in ("door_1", "door_2", "pir_3"))

    # Z2M's per-device availability marks that device alone
    gateway.publish("zigbee2mqtt/pir_3/availability", {"state": "offline"}, retain=True)
    assert wait_until(lambda: firing(hub, "silent", "pir_3") is not None)
    assert firing(hub, "silent", "door_1") is None
    gateway.publish("zigbee2mqtt/pir_3/availability", {"state": "online"}, retain=True)
    assert wait_until(lambda: of_state(hub, "silent", "pir_3", "resolved") is not None)

    # a gateway's own LWT (`availability:`): ThingsBoard gateway devices, learned from its telemetry
    gateway.publish("v1/gateway/telemetry", {"Pump A": [{"values": {"pressure": 2.1}}],
                                             "Pump B": [{"values": {"pressure": 2.3}}]})
    assert wait_until(lambda: sum(1 for k in agent.engine.states if k.startswith("silent|Pump_")) == 2)
    gateway.publish("gateways/tb-1/lwt", "offline")
    assert wait_until(lambda: firing(hub, "silent", "thingsboard-gateway") is not None)
    assert firing(hub, "silent", "thingsboard-gateway")["labels"]["devices"] == "2"
    gateway.publish("gateways/tb-1/lwt", "online")
    assert wait_until(lambda: of_state(hub, "silent", "thingsboard-gateway", "resolved") is not None)

    # Tasmota's LWT is the device's own; Sparkplug's NDEATH is the node's, for every device it birthed
    gateway.publish("tele/tasmota_9/SENSOR", {"Time": "2026-01-01T08:00:00", "DS18B20": {"Temperature": 20.0}})
    assert wait_until(lambda: "silent|tasmota_9|" in agent.engine.states)
    gateway.publish("tele/tasmota_9/LWT", "Offline", retain=True)
    assert wait_until(lambda: firing(hub, "silent", "tasmota_9") is not None)
    spb_node(gateway, "grid-07", "plc-2", 5, {"gas-b": 1.0, "gas-c": 2.0})
    assert wait_until(lambda: all(f"silent|{d}|" in agent.engine.states for d in ("gas-b", "gas-c")))
    stale_will = spb.encode([M("bdSeq", spb.INT64, 4)])
    gateway.publish("spBv1.0/grid-07/NDEATH/plc-2", stale_will)  # an older session's will: ignored
    will = spb.encode([M("bdSeq", spb.INT64, 5)])
    gateway.publish("spBv1.0/grid-07/NDEATH/plc-2", will)
    assert wait_until(lambda: firing(hub, "silent", "plc-2") is not None)
    assert firing(hub, "silent", "plc-2")["labels"]["device_ids"] == "gas-b,gas-c"
    assert agent.engine.states["silent|gas-b|"]["d"]["via"] == "plc-2"
    assert 'gridwatch_edge_rejected_total{reason="stale_death"} 1.0' in metrics_text(agent)
    spb_node(gateway, "grid-07", "plc-2", 6, {"gas-b": 1.0, "gas-c": 2.0})  # back: NBIRTH, DBIRTHs
    assert wait_until(lambda: of_state(hub, "silent", "plc-2", "resolved") is not None)
    assert wait_until(lambda: not agent.engine.states["silent|gas-c|"]["d"]["stale"])


def test_bad_mapped_input_is_counted_with_its_reason_and_the_next_good_message_goes_through(
        agent, hub, gateway, broker):
    cmds: list[paho.MQTTMessage] = []
    watcher = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    watcher.on_message = lambda c, u, m: cmds.append(m)
    watcher.connect(broker.host, broker.port)
    watcher.subscribe("spBv1.0/+/NCMD/+", qos=1)
    watcher.loop_start()
    time.sleep(0.3)
    try:
        n = 0

        def good() -> None:
            nonlocal n
            n += 1
            gateway.publish("zigbee2mqtt/probe", {"temperature": 60.0 + n, "last_seen": iso(time.time() - 100 + n)})
            gateway.publish("zigbee2mqtt/probe", {"temperature": 20.0, "last_seen": iso(time.time() - 100 + n + 0.5)})
            assert wait_until(lambda: sum(1 for a in hub.unique.values() if a["device_id"] == "probe"
                                          and a["state"] == "resolved") == n), f"good message {n} not processed"

        good()
        cases = [
            ("unmapped", "spBv1.0/grid-07/NDATA", b"\x00"),  # matches the Sparkplug subscription, not its shape
            ("missing_field", "$oc/devices/d1/sys/properties/report", b'{"services": []}'),
            ("wrong_type", "zigbee2mqtt/probe", b'{"temperature": "n/a"}'),
            ("bad_ts", "tele/tasmota_1/SENSOR", b'{"Time": "yesterday", "SI7021": {"Temperature": 1}}'),
            ("unknown_alias", "spBv1.0/grid-07/DDATA/plc-9/gas-z", spb.encode(
             [M(None, spb.DOUBLE, 1.0, alias=3)], int(time.time() * 1000), seq=1)),
        ]
        for reason, topic, payload in cases:
            gateway.publish(topic, payload)
            assert wait_until(lambda r=reason: f'gridwatch_edge_rejected_total{{reason="{r}"}} 1.0'
                              in metrics_text(agent)), reason
            good()
        body = metrics_text(agent)
        assert 'gridwatch_edge_unmapped_total{filter="spBv1.0/+/#"} 1.0' in body
        # the unknown alias asked the node for a rebirth (Sparkplug 3.0: NCMD Node Control/Rebirth = true)
        assert wait_until(lambda: any(m.topic == "spBv1.0/grid-07/NCMD/plc-9" for m in cmds))
        cmd = spb.decode(next(m for m in cmds if m.topic == "spBv1.0/grid-07/NCMD/plc-9").payload)
        assert [(x.name, spb.value(x)) for x in cmd.metrics] == [("Node Control/Rebirth", True)]
        assert agent.health()[0]
    finally:
        watcher.loop_stop()
        watcher.disconnect()
