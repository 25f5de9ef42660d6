"""Feed mappings without a broker: time formats, value maps, many devices per message, errors that name
the feed, the path and the value, config errors with file and line, `feeds try`, and backtests of raw
gateway captures (shapes cited in tests/test_feeds_e2e.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

import pytest

from edge.backtest import backtest
from edge.config import EdgeConfig, load_edge_config
from edge.errors import Rejected
from edge.feeds import FeedSet
from edge.feeds.values import device_id
from edge.message import Message
from edge.rules.engine import Engine
from edge.rules.loader import load_rules
from edge.rules.ruleset import RuleSet
from edge.sensors.common import Limits
from gridwatch.core.errors import ConfigError

NOW = 1_795_000_000.0  # 2026-11-18


def feedset(*feeds: dict, devices: list[dict] | None = None) -> FeedSet:
    cfg = EdgeConfig.model_validate({"feeds": list(feeds), "devices": {"list": devices or []}})
    return FeedSet(cfg.feed_specs(), Limits(), "gw", cfg.registry())


def one(fs: FeedSet, topic: str, payload: str | bytes | dict, at: float = NOW):
    body = json.dumps(payload) if isinstance(payload, dict | list) else payload
    return fs.decode(Message(topic, body.encode() if isinstance(body, str) else body, at))


def rejected(fs: FeedSet, topic: str, payload: str | dict) -> Rejected:
    with pytest.raises(Rejected) as exc:
        one(fs, topic, payload)
    return exc.value


SITE = {"name": "site", "topic": "site/{grid}/+/{device}/data", "metrics": {"level": "$.water.level_m"},
        "ts": {"path": "$.t"}}


@pytest.mark.parametrize("stamp,fmt,expected", [
    (NOW - 10, "auto", NOW - 10),  # epoch seconds: no longer "before the year 2000"
    ((NOW - 10) * 1000, "auto", NOW - 10),
    ((NOW - 10) * 1_000_000, "auto", NOW - 10),
    (str(NOW - 10), "epoch_s", NOW - 10),
    ("2026-11-18T12:53:10+08:00", "rfc3339", datetime(2026, 11, 18, 4, 53, 10, tzinfo=UTC).timestamp()),
    ("2026-11-18T12:53:10", "rfc3339", datetime(2026, 11, 18, 4, 53, 10, tzinfo=UTC).timestamp()),  # feed tz
    ("20261118T045310Z", "compact", datetime(2026, 11, 18, 4, 53, 10, tzinfo=UTC).timestamp()),
])
def test_time_formats(stamp, fmt, expected):
    """Epoch seconds were rejected as "before the year 2000" by the native decoder; a feed says its format."""
    fs = feedset({**SITE, "ts": {"path": "$.t", "format": fmt, "tz": "Asia/Shanghai"}})
    [ev] = one(fs, "site/grid-09/river/wl-3/data", {"t": stamp, "water": {"level_m": 1.25}})
    assert (ev.grid, ev.device, ev.metrics, ev.ts) == ("grid-09", "wl-3", {"level": 1.25}, pytest.approx(expected))


def test_receive_time_when_the_device_sends_none_and_numeric_strings_where_the_feed_says_so():
    fs = feedset({**SITE, "ts": "receive", "numeric_strings": True})
    [ev] = one(fs, "site/g1/x/d1/data", {"water": {"level_m": " 2.50 "}}, at=NOW + 3)
    assert ev.ts == NOW + 3 and ev.metrics == {"level": 2.5}
    strict = feedset({**SITE, "ts": "receive"})
    assert str(rejected(strict, "site/g1/x/d1/data", {"water": {"level_m": "2.5"}})) == (
        'wrong_type: feed site: $.water.level_m: expected a number, got "2.5"')


def test_errors_name_the_feed_the_path_and_the_value():
    fs = feedset(SITE, {"preset": "zigbee2mqtt", "grid": "grid-01"})
    cases = {
        ("site/g1/x/d1/data", '{"t": 1795000000, "water": {}}'):
            "missing_field: feed site: $.water.level_m: not in the payload",
        ("site/g1/x/d1/data", '{"water": {"level_m": 1}}'):
            "missing_field: feed site: $.t: no time stamp in the payload",
        ("site/g1/x/d1/data", '{"t": "yesterday", "water": {"level_m": 1}}'):
            "bad_ts: feed site: $.t: \"yesterday\" is not an RFC 3339 time",
        ("site/g1/x/d1/data", '{"t": "2026-11-18T12:00:00", "water": {"level_m": 1}}'):
            "bad_ts: feed site: $.t: \"2026-11-18T12:00:00\" has no offset and the feed sets no ts.tz",
        ("site/g1/x/d1/data", '{"t": 1795000000, "water": {"level_m": null}}'):
            "missing_field: feed site: $.water.level_m: not in the payload",
        ("site/g1/x/d1/data", '{"t": 4000000000, "water": {"level_m": 1}}'):
            "ts_in_future: feed site: $.t: 4000000000 is 2205000000s ahead of the receive clock (limit 300s)",
        ("other/topic", "{}"): "unmapped: 'other/topic' matches no feed (arrived through (none))",
    }
    for (topic, payload), text in cases.items():
        assert str(rejected(fs, topic, payload)) == text
    one(fs, "zigbee2mqtt/th_1", {"temperature": 21.5})
    assert str(rejected(fs, "zigbee2mqtt/th_1", {"temperature": "n/a"})) == (
        'wrong_type: feed zigbee2mqtt: $.temperature: expected a number, got "n/a"')
    assert fs.unmapped == {"(none)": 1}


def test_value_maps_turn_words_into_numbers_and_fence_events():
    fs = feedset({"name": "relay", "topic": "relay/{device}", "grid": "g1", "metrics": {
                     "pump_on": {"path": "$.POWER", "map": {"ON": 1, "OFF": 0}}}},
                 {"name": "fence", "topic": "fence/{device}/alarm", "grid": "g2", "kind": "fence",
                  "event": {"path": "$.status", "map": {"alarm": "breach", "normal": "restore", "cut": "tamper"},
                            "zone": "$.zone"}})
    assert one(fs, "relay/p1", {"POWER": "ON"})[0].metrics == {"pump_on": 1.0}
    assert one(fs, "relay/p1", {"POWER": "off"})[0].metrics == {"pump_on": 0.0}  # words match without case
    [ev] = one(fs, "fence/f1/alarm", {"status": "alarm", "zone": "north"})
    assert (ev.kind, ev.event, ev.zone, ev.grid) == ("fence", "breach", "north", "g2")
    assert str(rejected(fs, "fence/f1/alarm", {"status": "buzz"})) == (
        "bad_field: feed fence: $.status: \"buzz\" is not one of ['breach', 'tamper', 'restore', 'fault'] "
        "(add it to event.map)")


def test_one_message_many_devices_and_registry_grids():
    pump = device_id("Pump 1", "t", "t")
    assert pump.startswith("Pump_1-") and pump != device_id("Pump  1", "t", "t")  # names that differ stay apart
    devices = [{"id": pump, "grid": "grid-11"}, {"id": "meter-2", "grid": "grid-12"}]
    fs = feedset({"preset": "thingsboard-gateway", "grid": "@registry"}, devices=devices)
    events = one(fs, "v1/gateway/telemetry", {
        "Pump 1": [{"ts": NOW * 1000, "values": {"pressure": 3.1}},
                   {"ts": NOW * 1000 + 500, "values": {"pressure": 3.2}}],
        "meter-2": [{"ts": NOW * 1000, "values": {"kwh": 12}}]})
    assert [(e.device, e.grid, e.ts, e.metrics) for e in events] == [
        (pump, "grid-11", NOW, {"pressure": 3.1}), (pump, "grid-11", NOW + 0.5, {"pressure": 3.2}),
        ("meter-2", "grid-12", NOW, {"kwh": 12.0})]
    assert rejected(fs, "v1/gateway/telemetry", {"Unknown": [{"ts": NOW * 1000, "values": {"x": 1}}]}).reason == (
        "unknown_device")
    iot = feedset({"preset": "huawei-iotda", "grid": "grid-04"})
    events = one(iot, "$oc/devices/dev1/sys/properties/report", {"services": [
        {"service_id": "Gas", "properties": {"ch4_ppm": 12}, "event_time": "20261118T045310Z"},
        {"service_id": "Battery", "properties": {"level": 88}}]})
    assert [(e.device, e.metrics) for e in events] == [("dev1", {"ch4_ppm": 12.0}), ("dev1", {"level": 88.0})]
    assert events[1].ts == NOW  # no event_time: the receive time


def test_gateway_status_marks_every_device_behind_it():
    fs = feedset({"preset": "zigbee2mqtt", "grid": "grid-01"}, devices=[
        {"id": "leak_9", "grid": "grid-02", "gateway": "zigbee2mqtt"}])  # listed, not heard from yet
    for d in ("door_1", "door_2"):
        one(fs, f"zigbee2mqtt/{d}", {"contact": True})
    events = one(fs, "zigbee2mqtt/bridge/state", "offline")  # the plain-text form of Z2M before 2.0
    assert [(e.device, e.grid, e.event, e.gateway, e.members) for e in events] == [
        ("door_1", "grid-01", "offline", "zigbee2mqtt", None), ("door_2", "grid-01", "offline", "zigbee2mqtt", None),
        ("leak_9", "grid-02", "offline", "zigbee2mqtt", None),
        ("zigbee2mqtt", "grid-01", "offline", None, ("door_1", "door_2", "leak_9"))]


def test_engine_one_alert_for_a_gateway_none_per_device(tmp_path):
    f = tmp_path / "rules.yaml"
    f.write_text("rules: [{id: silent, match: {kind: sensor}, when: {stale_for: 60s}, category: device_offline}]\n")
    engine = Engine(RuleSet(load_rules(f)))
    fs = feedset({"preset": "tasmota", "grid": "grid-01", "availability": "site/gw-1/lwt", "gateway": "gw-1"})
    for d in ("a", "b"):
        for ev in one(fs, f"tele/{d}/SENSOR", {"Time": "2026-11-18T12:00:00", "S": {"Temperature": 1}}):
            engine.observe(ev)
    fs.ctx.learn("gw-1", "a", "grid-01", "sensor")
    fs.ctx.learn("gw-1", "b", "grid-01", "sensor")
    alerts = [a for ev in one(fs, "site/gw-1/lwt", "Offline", at=NOW + 1) for a in engine.observe(ev)]
    assert [(a.device_id, a.state, a.labels["devices"]) for a in alerts] == [("gw-1", "firing", "2")]
    assert engine.tick(NOW + 3600) == []  # the devices' own silence timers wait for the gateway
    alerts = [a for ev in one(fs, "site/gw-1/lwt", "Online", at=NOW + 4000) for a in engine.observe(ev)]
    assert [(a.device_id, a.state) for a in alerts] == [("gw-1", "resolved")]
    later = engine.tick(NOW + 4000 + 61)  # back: their timers count from the gateway's return
    assert sorted(a.device_id for a in later) == ["a", "b"]


def test_config_errors_name_file_yaml_path_and_line(tmp_path):
    f = tmp_path / "edge.yaml"
    f.write_text(textwrap.dedent("""\
        feeds:
          - preset: zigbee2mqtt
            grid: grid-01
          - name: site
            topic: site/{grid}/{device}
            metrics: {level: "$.water[?"}
          - {preset: zigbee2mqtt, grd: grid-01}
          - {preset: zigbeemqtt}
          - {name: t, topic: "a/{device}", metrics: {x: $.x}}
    """))
    with pytest.raises(ConfigError) as exc:
        load_edge_config(f)
    text = "\n".join(exc.value.problems)
    lines = exc.value.problems
    for start, line in ((f"{f}:feeds[1]: feed site: metrics.level.path: '$.water[?' is not a JSON path", 4),
                        (f"{f}:feeds[2]: preset zigbee2mqtt: unknown keys ['grd']", 7),
                        (f"{f}:feeds[3]: unknown preset 'zigbeemqtt'", 8),
                        (f"{f}:feeds[4]: feed t: grid is required", 9)):
        assert any(p.startswith(start) and p.endswith(f"(line {line})") for p in lines), (start, text)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridwatch", *args], capture_output=True, text=True, timeout=60)


def test_feeds_check_and_try(tmp_path):
    f = tmp_path / "edge.yaml"
    f.write_text("feeds: [{preset: gridwatch}, {preset: tasmota, grid: grid-02}]\n")
    r = cli("feeds", "check", str(f))
    assert r.returncode == 0 and "tasmota:lwt" in r.stderr, r.stderr
    r = cli("feeds", "try", str(f), "--topic", "tele/tasmota_1/SENSOR", "--payload",
            '{"Time":"2026-11-24T18:00:00","SI7021":{"Temperature":23.4,"Humidity":45},"TempUnit":"C"}')
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "feed tasmota: 1 event(s)",
        '  sensor  grid=grid-02 device=tasmota_1 ts=2026-11-24T10:00:00.000Z {"SI7021_Temperature": 23.4, '
        '"SI7021_Humidity": 45.0}']
    r = cli("feeds", "try", str(f), "--topic", "zigbee2mqtt/x", "--payload", "{}")
    assert r.returncode == 1 and r.stdout.startswith("rejected (unmapped):"), r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("feeds: [{preset: tasmota}]\n")
    r = cli("feeds", "check", str(bad))
    assert r.returncode == 1 and f"{bad}:feeds[0]: feed tasmota: grid is required" in r.stdout, r.stdout


def test_backtest_applies_the_feeds_so_a_raw_capture_replays_as_live(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: [{id: hot, match: {metric: temperature}, when: {above: 50, for: 10s}, category: fire}]\n")
    edge = tmp_path / "edge.yaml"
    edge.write_text(f"rules: {rules}\nfeeds: [{{preset: zigbee2mqtt, grid: grid-01}}]\n")
    capture = tmp_path / "cap.jsonl"
    t0 = time.time() - 3600

    def line(dt: float, topic: str, payload: object) -> str:
        stamp = datetime.fromtimestamp(t0 + dt, UTC).isoformat().replace("+00:00", "Z")
        return json.dumps({"topic": topic, "received_at": stamp, "payload": payload})
    capture.write_text("\n".join([line(0, "zigbee2mqtt/th_1", {"temperature": 60}),
                                  line(5, "zigbee2mqtt/th_1", {"temperature": 61}),
                                  line(12, "zigbee2mqtt/th_1", {"temperature": 62}),
                                  line(13, "zigbee2mqtt/bridge/info", {"version": "1.40"})]) + "\n")
    cfg = load_edge_config(edge)
    res = backtest(RuleSet(load_rules(rules)), capture, feeds=FeedSet(cfg.feed_specs(), Limits(), "gw"))
    assert [(a.rule_id, a.device_id, a.state) for a in res.alerts] == [("hot", "th_1", "firing")]
    assert res.alerts[0].observed_at.timestamp() == pytest.approx(t0 + 12, abs=0.001)
    assert res.rejected == {"unmapped": 1}
    r = cli("rules", "backtest", str(rules), "--input", str(capture), "--edge-config", str(edge))
    assert r.returncode == 0 and "hot" in r.stdout and "th_1" in r.stdout, r.stdout + r.stderr
    r = cli("rules", "backtest", str(rules), "--input", str(capture))  # without the feeds: nothing is mapped
    assert r.returncode == 0 and "th_1" not in r.stdout


def test_native_contract_says_what_an_epoch_seconds_stamp_is():
    fs = feedset({"preset": "gridwatch"})
    rej = rejected(fs, "gw/grid-01/sensor/gas-01/reading", {"ts": 1795000000, "metrics": {"ch4_ppm": 1}})
    assert rej.reason == "bad_ts" and "looks like epoch seconds" in rej.detail and "ts.format: epoch_s" in rej.detail


def test_unquoted_on_off_in_yaml_word_maps_mean_the_words(tmp_path):
    """YAML 1.1 reads `ON: 1` as `True: 1`; the map still answers "ON", "on" and JSON true."""
    f = tmp_path / "edge.yaml"
    f.write_text("feeds:\n  - {name: relay, topic: 'relay/{device}', grid: g1,\n"
                 "     metrics: {pump_on: {path: $.POWER, map: {ON: 1, OFF: 0}}}}\n")
    cfg = load_edge_config(f)
    fs = FeedSet(cfg.feed_specs(), Limits())
    assert [one(fs, "relay/p1", {"POWER": w})[0].metrics["pump_on"] for w in ("ON", "off", True)] == [1.0, 0.0, 1.0]


def test_a_json_string_payload_is_not_parsed_again_by_a_path():
    """Found by the fuzzer: python-jsonpath takes a str as a JSON document, so the payload `"["` (a JSON
    string) made a wildcard path raise JSONDecodeError instead of a refusal."""
    fs = feedset({"preset": "huawei-iotda", "grid": "g"})
    assert rejected(fs, "$oc/devices/d1/sys/properties/report", '"["').reason == "missing_field"
    assert rejected(fs, "$oc/devices/d1/sys/properties/report", '"{\\"services\\": []}"').reason == "missing_field"
