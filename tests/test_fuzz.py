"""Property tests (hypothesis): whatever arrives, a decoder answers an event or `Rejected` with a reason,
and a config loader answers a model or `ConfigError` with `file:path: reason` lines; nothing else escapes
(issue 16: one unexpected exception had stopped the agent for good)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import EdgeConfig
from edge.errors import Rejected
from edge.message import Message
from edge.rules.loader import load_rules
from edge.rules.spec import RuleFile
from edge.sensors import decode
from edge.sensors.common import Limits
from gridwatch.core.errors import ConfigError
from gridwatch.core.yamlconf import load
from hub.policy.org import OrgFile
from hub.policy.sla import SlaFile

LIMITS = Limits(max_payload_bytes=4096)
TOPICS = st.sampled_from([f"gw/grid-01/{k}/dev-1/{leaf}" for k, leaf in (
    ("sensor", "reading"), ("sensor", "status"), ("fence", "event"), ("camera", "frame"), ("thermal", "frame"))]
    + ["gw/grid-01/sensor/dev-1", "gw/cases/sensor/x/reading", "gw/a/b/c/d/e", "", "gw/grid 1/sensor/d/reading"])
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decodes_or_rejects(topic: str, payload: bytes, props: dict[str, str]) -> None:
    now = time.time()
    try:
        ev = decode(Message(topic, payload, now, props), "gw", LIMITS)
    except Rejected as rej:
        assert rej.reason and rej.detail
        return
    assert ev.ts <= now + LIMITS.clock_tolerance_s and ev.device and ev.grid


@SETTINGS
@given(topic=TOPICS, payload=st.binary(max_size=600))
def test_any_bytes(topic, payload):
    _decodes_or_rejects(topic, payload, {})


@SETTINGS
@given(topic=TOPICS, body=st.dictionaries(
    st.sampled_from(["ts", "seq", "metrics", "zone", "event", "jpeg_b64", "png_b64", "x"]), JSONISH, max_size=6))
def test_any_json_object(topic, body):
    _decodes_or_rejects(topic, json.dumps(body).encode(), {})


@SETTINGS
@given(topic=TOPICS, ts=st.one_of(st.integers(), st.text(max_size=30)), head=st.binary(max_size=64),
       props=st.dictionaries(st.sampled_from(["ts", "seq", "x"]), st.text(max_size=20), max_size=3))
def test_frames_with_any_header_and_properties(topic, ts, head, props):
    payload = b"\xff\xd8" + head  # looks like a JPEG, is not one
    _decodes_or_rejects(topic, payload, props)
    envelope = json.dumps({"ts": ts, "jpeg_b64": base64.b64encode(payload).decode()}).encode()
    _decodes_or_rejects(topic, envelope, {})


YAMLISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["rules", "units", "policies", "id", "when", "match", "above", "for", "level", "parent",
                         "limits", "mqtt", "hub", "grids", "x"]), children, max_size=4),
    max_leaves=15)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=YAMLISH, model=st.sampled_from([RuleFile, OrgFile, SlaFile, EdgeConfig]))
def test_config_loaders_answer_a_model_or_file_path_reasons(tmp_path: Path, data, model):
    import yaml

    p = tmp_path / "f.yaml"
    p.write_text(yaml.safe_dump(data))
    try:
        load_rules(p) if model is RuleFile else load(model, p)  # rules: with their cross-checks too
    except ConfigError as exc:
        assert exc.problems and all(line.startswith(str(p)) for line in exc.problems)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_config_loaders_on_any_text(tmp_path: Path, text):
    p = tmp_path / "f.yaml"
    p.write_text(text, encoding="utf-8")
    try:
        load_rules(p)
    except ConfigError as exc:
        assert exc.problems and all(line.startswith(str(p)) for line in exc.problems)


# ---- feed mappings (issue 11): every preset's topics, any payload; any `feeds:` entry -------------------
FEEDS_CFG = EdgeConfig.model_validate({"feeds": [
    {"preset": "gridwatch"}, {"preset": "zigbee2mqtt", "grid": "grid-01"}, {"preset": "tasmota", "grid": "@registry"},
    {"preset": "thingsboard-gateway", "grid": "grid-03", "availability": "gw-lwt/tb"},
    {"preset": "huawei-iotda", "grid": "grid-04"}, {"preset": "onenet", "grid": "grid-05"},
    {"preset": "homeassistant", "grid": "grid-06", "value": "{{ value_json.level }}"},
    {"preset": "sparkplug-b", "grid": "{group}"},
    {"name": "site", "topic": "site/{grid}/+/{device}/data", "numeric_strings": True, "kind": "fence",
     "event": {"path": "$.e", "map": {"alarm": "breach"}, "zone": "$.z"}, "ts": {"path": "$.t", "tz": "UTC"}}],
    "devices": {"list": [{"id": "t1", "grid": "grid-02"}]}})
FEED_TOPICS = st.sampled_from([
    "zigbee2mqtt/t1", "zigbee2mqtt/t1/availability", "zigbee2mqtt/bridge/state", "tele/t1/SENSOR", "tele/t1/LWT",
    "tele/unknown/SENSOR", "v1/gateway/telemetry", "v1/gateway/connect", "v1/gateway/disconnect", "gw-lwt/tb",
    "$oc/devices/d1/sys/properties/report", "$sys/p/d1/thing/property/post", "homeassistant/sensor/lvl/state",
    "spBv1.0/grid-07/NBIRTH/n1", "spBv1.0/grid-07/DDATA/n1/d1", "spBv1.0/grid-07/NDEATH/n1",
    "spBv1.0/grid-07/DBIRTH/n1/d1", "spBv1.0/STATE/host", "spBv1.0/g", "site/g1/x/d1/data", "other/topic"])
MAPPED_KEYS = st.sampled_from(["temperature", "Time", "ts", "values", "services", "params", "state", "device",
                               "e", "z", "t", "level", "last_seen", "properties", "event_time", "value", "time",
                               "Device A", "AM2301"])


def _maps_or_rejects(fs, topic: str, payload: bytes) -> None:
    now = time.time()
    try:
        events = fs.decode(Message(topic, payload, now))
    except Rejected as rej:
        assert rej.reason and rej.detail
        return
    for ev in events:
        assert ev.device and ev.grid and ev.ts <= now + LIMITS.clock_tolerance_s
        assert all(isinstance(v, float) and v == v for v in ev.metrics.values())


def _feedset():
    from edge.feeds import FeedSet

    return FeedSet(FEEDS_CFG.feed_specs(), LIMITS, "gw", FEEDS_CFG.registry())


@SETTINGS
@given(topic=FEED_TOPICS, payload=st.binary(max_size=300))
def test_feeds_any_bytes(topic, payload):
    _maps_or_rejects(_feedset(), topic, payload)


@SETTINGS
@given(msgs=st.lists(st.tuples(FEED_TOPICS, st.recursive(
    JSONISH, lambda children: st.dictionaries(MAPPED_KEYS, children, max_size=5), max_leaves=25)), max_size=6))
def test_feeds_any_json_in_any_order(msgs):
    fs = _feedset()  # one feed set for the sequence: gateways learned, births remembered across messages
    for topic, body in msgs:
        _maps_or_rejects(fs, topic, json.dumps(body).encode())


@settings(max_examples=200, deadline=None)
@given(entry=st.dictionaries(st.sampled_from(
    ["preset", "name", "topic", "grid", "device", "kind", "role", "scope", "ts", "metrics", "collect", "event",
     "state", "values", "records", "each_device", "format", "availability", "tz", "x"]), YAMLISH | st.sampled_from(
    ["zigbee2mqtt", "sparkplug-b", "a/{device}", "{grid}", "$.x", "$[", "@registry", "status", "gateway", "fence"]),
    max_size=6))
def test_any_feed_entry_is_a_feed_or_a_reason(entry):
    from pydantic import ValidationError

    try:
        cfg = EdgeConfig.model_validate({"feeds": [entry]})
    except ValidationError as exc:
        assert exc.errors() and all(e["msg"] for e in exc.errors())
        return
    from edge.feeds import FeedSet

    FeedSet(cfg.feed_specs(), LIMITS)  # what validates also compiles
