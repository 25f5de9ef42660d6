"""Ready-made feeds for the common gateways, usable by name: `feeds: [{preset: zigbee2mqtt, grid: grid-01}]`.

Each preset expands into one or more plain feeds (`edge.feeds.spec.FeedSpec`): its data topic and its
availability / LWT topics. Where each shape comes from:

- `gridwatch`: the native contract (DESIGN §3), `{root}/{grid}/{kind}/{device}/{leaf}`.
- `zigbee2mqtt`: zigbee2mqtt.io "MQTT topics and messages": `zigbee2mqtt/FRIENDLY_NAME` carries the
  device's exposes as one JSON object; `FRIENDLY_NAME/availability` and `bridge/state` carry
  `{"state": "online"|"offline"}` (plain `online`/`offline` before 2.0); `last_seen` when enabled.
- `tasmota`: tasmota.github.io "MQTT": `tele/%topic%/SENSOR` with `"Time"` in the device's local time
  (no offset) and one object per sensor; `tele/%topic%/LWT` retained `Online` / `Offline`.
- `thingsboard-gateway`: thingsboard.io "Gateway MQTT API": `v1/gateway/telemetry`
  `{"Device A": [{"ts": ms, "values": {...}}]}`, `v1/gateway/connect` / `disconnect` `{"device": ...}`.
- `huawei-iotda`: Huawei Cloud IoTDA "Device Reporting Properties":
  `$oc/devices/{device_id}/sys/properties/report`, `{"services": [{"service_id", "properties", "event_time":
  "20151212T121212Z"}]}`.
- `onenet`: China Mobile OneNET OneJSON "属性上报": `$sys/{pid}/{device-name}/thing/property/post`,
  `{"id", "version", "params": {"temp": {"value": 23.6, "time": ms}}}`.
- `homeassistant`: Home Assistant MQTT Statestream: `homeassistant/{domain}/{entity}/state`, the state as
  text; `value: "{{ value_json.x }}"` reads a JSON state the way a value_template does.
- `sparkplug-b`: Eclipse Sparkplug 3.0 `spBv1.0/{group}/{NBIRTH|NDATA|NDEATH|DBIRTH|DDATA|DDEATH}/{node}[/{dev}]`.
"""

from __future__ import annotations

from typing import Any

WORDS = {"ON": 1.0, "OFF": 0.0, "on": 1.0, "off": 0.0, "open": 1.0, "closed": 0.0, "true": 1.0, "false": 0.0}

PRESETS = ("gridwatch", "zigbee2mqtt", "tasmota", "thingsboard-gateway", "huawei-iotda", "onenet",
           "homeassistant", "sparkplug-b")

# keys a preset entry may carry; data feeds take the rest of a user's keys as overrides
COMMON = {"preset", "name", "base", "grid", "tz", "availability", "kind", "gateway"}
DATA_KEYS = {"metrics", "collect", "values", "numeric_strings", "ts", "event", "device", "value"}


def expand(item: dict[str, Any], root: str) -> list[dict[str, Any]]:
    """A `feeds:` entry as plain feeds: a preset's, or the entry itself."""
    preset = item.get("preset")
    if preset is None:
        out = [dict(item)]
        out[0].setdefault("name", item.get("topic", "feed"))
        out[0].setdefault("group", out[0]["name"])
        return _with_availability(out, item)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (expected one of {', '.join(PRESETS)})")
    unknown = set(item) - COMMON - DATA_KEYS - ({"group"} if preset == "sparkplug-b" else set())
    if unknown:
        raise ValueError(f"preset {preset}: unknown keys {sorted(unknown)} (a preset takes "
                         f"{sorted(COMMON | DATA_KEYS)}; write a plain feed for anything else)")
    name = str(item.get("name", preset))
    feeds = _BUILD[preset](item, root)
    for f in feeds:
        f["name"] = name if f.get("role", "data") == "data" and f is feeds[0] else f"{name}:{f.pop('suffix')}"
        f.pop("suffix", None)
        f["group"] = name
        for k in ("grid", "gateway", "kind"):
            if k in item:
                f.setdefault(k, item[k])
        if "tz" in item:
            f.setdefault("ts", {})["tz"] = item["tz"]
    data = feeds[0]
    for k in DATA_KEYS - {"value", "device"}:
        if k in item:
            if k == "metrics" and isinstance(data.get("metrics"), dict):
                data["metrics"] = {**data["metrics"], **item[k]}
            elif k == "ts" and isinstance(item[k], dict):
                data["ts"] = {**data.get("ts", {}), **item[k]}
            else:
                data[k] = item[k]
    if "device" in item:
        for f in feeds:
            if f.get("scope") != "gateway":
                f["device"] = item["device"]
    return _with_availability(feeds, item)


def _with_availability(feeds: list[dict[str, Any]], item: dict[str, Any]) -> list[dict[str, Any]]:
    """`availability: topic`: the gateway's LWT; `offline` there marks every device behind it offline."""
    topic = item.get("availability")
    if topic is not None:
        for f in feeds:
            f.pop("availability", None)
        first = feeds[0]
        lwt = {"name": f"{first['name']}:availability", "topic": topic, "role": "status", "scope": "gateway",
               "format": "auto", "grid": first.get("grid"), "group": first["group"],
               "kind": first.get("kind", "sensor")}
        if "gateway" in item:
            lwt["gateway"] = item["gateway"]
        feeds.append(lwt)
    return feeds


def _native(item: dict[str, Any], root: str) -> list[dict[str, Any]]:
    return [{"topic": f"{item.get('base', root)}/+/+/+/+", "format": "gridwatch"}]


def _zigbee2mqtt(item: dict[str, Any], root: str) -> list[dict[str, Any]]:
    base = item.get("base", "zigbee2mqtt")
    return [
        {"topic": f"{base}/{{device}}", "collect": {"path": "$", "skip": ["last_seen", "update", "linkquality"]},
         "values": WORDS, "ts": {"path": "$.last_seen", "format": "auto", "required": False}},
        {"suffix": "availability", "topic": f"{base}/{{device}}/availability", "role": "status",
         "format": "auto"},
        {"suffix": "bridge", "topic": f"{base}/bridge/state", "role": "status", "scope": "gateway",
         "format": "auto"},
    ]


def _tasmota(item: dict[str, Any], root: str) -> list[dict[str, Any]]:
    base = item.get("base", "tele")
    return [
        {"topic": f"{base}/{{device}}/SENSOR", "values": WORDS,
         "collect": {"path": "$", "skip": ["Time", "TempUnit", "PressureUnit", "SpeedUnit", "Id"]},
         "ts": {"path": "$.Time", "format": "rfc3339", "tz": "Asia/Shanghai"}},
        {"suffix": "lwt", "topic": f"{base}/{{device}}/LWT", "role": "status", "format": "auto"},
    ]


def _thingsboard(item: dict[str, Any], root: str) -> list[dict[str, Any]]:
    base = item.get("base", "v1/gateway")
    return [
        {"topic": f"{base}/telemetry", "each_device": "$", "device": "@key", "values": WORDS,
         "collect": {"path": "$.values"}, "ts": {"path": "$.ts", "format": "epoch_ms", "required": False}},
        {"suffix": "connect", "topic": f"{base}/connect", "role": "status", "device": "$.device",
         "state": {"value": "online"}},
        {"suffix": "disconnect", "topic": f"{base}/disconnect", "role": "status", "device": "$.device",
         "state": {"value": "offline"}},
    ]


def _iotda(item: dict[str, Any], root: str) -> list[dict[str, Any]]:
    return [{"topic": "$oc/devices/{device}/sys/properties/report", "records": "$.services[*]", "values": WORDS,
             "collect": {"path": "$.properties"},
             "ts": {"path": "$.event_time", "format": "compact", "required": False}}]


def _onenet(item: dict[str, Any], root: str) -> list[dict[str, Any]]:
    return [{"topic": "$sys/+/{device}/thing/property/post", "values": WORDS,
             "collect": {"path": "$.params", "member": "value"},
             "ts": {"path": "$.params.*.time", "format": "epoch_ms", "required": False}}]


def _homeassistant(item: dict[str, Any], root: str) -> list[dict[str, Any]]:
    base = item.get("base", "homeassistant")
    value = item.get("value", "{{ value }}")
    return [{"topic": f"{base}/+/{{device}}/state", "format": "auto", "numeric_strings": True,
             "metrics": {"state": {"path": value, "map": WORDS}}}]


def _sparkplug(item: dict[str, Any], root: str) -> list[dict[str, Any]]:
    group = item.get("group", "+")
    return [{"topic": f"{item.get('base', 'spBv1.0')}/{group}/#", "format": "sparkplug-b"}]


_BUILD = {"gridwatch": _native, "zigbee2mqtt": _zigbee2mqtt, "tasmota": _tasmota,
          "thingsboard-gateway": _thingsboard, "huawei-iotda": _iotda, "onenet": _onenet,
          "homeassistant": _homeassistant, "sparkplug-b": _sparkplug}
