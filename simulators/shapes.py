"""What a simulated sensor's readings and liveness look like on the wire, per gateway kind.

The shapes follow the projects' documents (cited in `edge/feeds/presets.py`): the native contract,
Zigbee2MQTT (`zigbee2mqtt/<name>` + `<name>/availability`), Tasmota (`tele/<topic>/SENSOR` with a local
`Time` and no offset, LWT `Online`/`Offline`), the ThingsBoard IoT gateway (`v1/gateway/telemetry`,
`connect`), Huawei IoTDA property reports, OneNET OneJSON property posts and Sparkplug B (each simulated
device its own edge node: NBIRTH with a bdSeq, NDATA, an NDEATH will).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

Shape = Literal["gridwatch", "zigbee2mqtt", "tasmota", "thingsboard-gateway", "huawei-iotda", "onenet",
                "sparkplug-b"]
SHAPES: Final[tuple[str, ...]] = get_args(Shape)
TASMOTA_TZ = ZoneInfo("Asia/Shanghai")  # the tasmota preset's default zone for its offset-less Time

Wire = tuple[str, bytes, bool]  # topic, payload, retained


def _json(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def reading(shape: str, root: str, grid: str, device: str, metrics: dict[str, float], ts_ms: int,
            seq: int) -> Wire:
    """One sensor reading in the gateway's own shape."""
    if shape == "zigbee2mqtt":
        iso = datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return f"zigbee2mqtt/{device}", _json({**metrics, "linkquality": 120, "last_seen": iso}), False
    if shape == "tasmota":
        local = datetime.fromtimestamp(ts_ms // 1000, TASMOTA_TZ).replace(tzinfo=None).isoformat()
        return f"tele/{device}/SENSOR", _json({"Time": local, **metrics}), False
    if shape == "thingsboard-gateway":
        return "v1/gateway/telemetry", _json({device: [{"ts": ts_ms, "values": metrics}]}), False
    if shape == "huawei-iotda":
        stamp = datetime.fromtimestamp(ts_ms // 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
        return (f"$oc/devices/{device}/sys/properties/report",
                _json({"services": [{"service_id": "Sensor", "properties": metrics, "event_time": stamp}]}), False)
    if shape == "onenet":
        return (f"$sys/sim/{device}/thing/property/post",
                _json({"id": str(seq), "version": "1.0",
                       "params": {k: {"value": v, "time": ts_ms} for k, v in metrics.items()}}), False)
    if shape == "sparkplug-b":
        from gridwatch.core import sparkplug as spb  # only when a device speaks it: `gridwatch --help` stays light

        data = spb.encode([spb.M(k, spb.DOUBLE, float(v), ts_ms) for k, v in metrics.items()],
                          timestamp=ts_ms, seq=seq % 256)
        return f"spBv1.0/{grid}/NDATA/{device}", data, False
    return f"{root}/{grid}/sensor/{device}/reading", _json({"ts": ts_ms, "seq": seq, "metrics": metrics}), False


def will(shape: str, root: str, grid: str, device: str, bdseq: int = 0) -> Wire | None:
    """The last will the device's connection leaves with the broker (None: the gateway kind has none)."""
    if shape == "zigbee2mqtt":
        return f"zigbee2mqtt/{device}/availability", _json({"state": "offline"}), True
    if shape == "tasmota":
        return f"tele/{device}/LWT", b"Offline", True
    if shape == "sparkplug-b":
        from gridwatch.core import sparkplug as spb

        death = spb.encode([spb.M("bdSeq", spb.INT64, bdseq)])
        return f"spBv1.0/{grid}/NDEATH/{device}", death, False
    if shape == "gridwatch":
        return f"{root}/{grid}/sensor/{device}/status", b"offline", True
    return None


def hello(shape: str, root: str, grid: str, device: str, ts_ms: int, bdseq: int = 0) -> list[Wire]:
    """What the device says when it connects: online, birth, connect."""
    if shape == "zigbee2mqtt":
        return [(f"zigbee2mqtt/{device}/availability", _json({"state": "online"}), True)]
    if shape == "tasmota":
        return [(f"tele/{device}/LWT", b"Online", True)]
    if shape == "thingsboard-gateway":
        return [("v1/gateway/connect", _json({"device": device}), False)]
    if shape == "sparkplug-b":
        from gridwatch.core import sparkplug as spb

        birth = spb.encode([spb.M("bdSeq", spb.INT64, bdseq, ts_ms),
                            spb.M("Node Control/Rebirth", spb.BOOLEAN, False, ts_ms)], timestamp=ts_ms, seq=0)
        return [(f"spBv1.0/{grid}/NBIRTH/{device}", birth, False)]
    if shape == "gridwatch":
        return [(f"{root}/{grid}/sensor/{device}/status", b"online", True)]
    return []
