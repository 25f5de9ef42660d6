"""Sensor readings: `gw/{grid}/sensor/{device}/reading` with `{"ts", "seq", "metrics": {...}}`."""

from __future__ import annotations

import re

from edge.errors import Rejected
from edge.message import Event, Message
from edge.sensors.common import Limits, check_size, load_object, number, parse_seq, parse_ts
from edge.topics import Topic

METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_GOOD_NAMES: set[str] = set()


def decode(msg: Message, topic: Topic, limits: Limits) -> Event:
    check_size(msg.payload, limits)
    body = load_object(msg.payload)
    ts = parse_ts(body.get("ts"), msg.received_at, limits)
    raw = body.get("metrics")
    if raw is None:
        raise Rejected("missing_field", "field 'metrics' is required")
    if not isinstance(raw, dict):
        raise Rejected("wrong_type", f"field 'metrics' must be an object, got {type(raw).__name__}")
    if not raw:
        raise Rejected("missing_field", "field 'metrics' is empty")
    if len(raw) > limits.max_metrics:
        raise Rejected("oversize", f"{len(raw)} metrics, limit {limits.max_metrics}")
    metrics: dict[str, float] = {}
    for name, value in raw.items():
        if name not in _GOOD_NAMES:
            if not isinstance(name, str) or not METRIC_NAME.match(name):
                raise Rejected("bad_field", f"metric name {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
            if len(_GOOD_NAMES) < 10_000:
                _GOOD_NAMES.add(name)
        if type(value) is float and value - value == 0.0:  # the common case: a finite float
            metrics[name] = value
        else:
            metrics[name] = number(name, value)
    return Event(kind="sensor", grid=topic.grid, device=topic.device, ts=ts, received_at=msg.received_at,
                 seq=parse_seq(body), metrics=metrics)
