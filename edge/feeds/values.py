"""Turning mapped payload values into what the rules take: numbers, stamps, device ids, states.

Every failure is a `Rejected` whose detail names the feed, the path and the value:
`feed zigbee2mqtt: $.temperature: expected a number, got "n/a"`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge.errors import Rejected
from edge.sensors.common import Limits
from gridwatch.core.names import NAME

Y2000 = 946684800.0
_SLUG = re.compile(r"[^A-Za-z0-9_-]+")
_METRIC_BAD = re.compile(r"[^A-Za-z0-9_]+")


def shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def device_id(raw: Any, feed: str, where: str) -> str:
    """A gateway's device name as a gridwatch id: kept when it is one already, else made one
    (`Living room` -> `Living_room-3f2a9c`: the hash keeps two names that differ only in spaces or
    Chinese characters apart)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not raw:
        raise Rejected("missing_field", f"feed {feed}: {where}: no device name (got {shown(raw)})")
    if NAME.match(raw):
        return raw
    slug = _SLUG.sub("_", raw).strip("_")[:56]
    return f"{slug}-{hashlib.sha1(raw.encode()).hexdigest()[:6]}" if slug else "d-" + hashlib.sha1(
        raw.encode()).hexdigest()[:12]


def metric_name(raw: str) -> str | None:
    name = _METRIC_BAD.sub("_", raw).strip("_")[:64]
    if not name:
        return None
    return name if not name[0].isdigit() else ("m_" + name)[:64]


def number(value: Any, feed: str, where: str, words: dict[str, float], numeric_strings: bool) -> float:
    if isinstance(value, bool):
        key = "true" if value else "false"
        out = words.get(key)
        if out is None:
            return 1.0 if value else 0.0
        return out
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        hit = words.get(value)
        if hit is None:
            hit = words.get(value.lower())
        if hit is not None:
            return hit
        if not numeric_strings:
            raise Rejected("wrong_type", f"feed {feed}: {where}: expected a number, got {shown(value)}")
        try:
            out = float(value.strip())
        except ValueError:
            raise Rejected("wrong_type", f"feed {feed}: {where}: expected a number, got {shown(value)}") from None
    else:
        raise Rejected("wrong_type", f"feed {feed}: {where}: expected a number, got {shown(value)}")
    if not math.isfinite(out):
        raise Rejected("not_finite", f"feed {feed}: {where}: {shown(value)} is NaN or infinite")
    return out


def _epoch(value: Any, scale: float, feed: str, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise Rejected("bad_ts", f"feed {feed}: {where}: {shown(value)} is not an epoch number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Rejected("bad_ts", f"feed {feed}: {where}: {shown(value)} is not an epoch number")
    return float(value) / scale


def stamp(value: Any, fmt: str, tz: str | None, feed: str, where: str) -> float:
    """A payload stamp as epoch seconds (`auto` tells epoch s / ms / µs apart by magnitude)."""
    if fmt == "auto":
        if isinstance(value, int | float) and not isinstance(value, bool):
            v = abs(float(value))
            fmt = "epoch_s" if v < 1e11 else ("epoch_ms" if v < 1e14 else "epoch_us")
        else:
            fmt = "rfc3339"
    if fmt == "epoch_s":
        return _epoch(value, 1.0, feed, where)
    if fmt == "epoch_ms":
        return _epoch(value, 1e3, feed, where)
    if fmt == "epoch_us":
        return _epoch(value, 1e6, feed, where)
    if not isinstance(value, str):
        raise Rejected("bad_ts", f"feed {feed}: {where}: expected a {fmt} time string, got {shown(value)}")
    if fmt == "compact":
        try:
            return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise Rejected("bad_ts", f"feed {feed}: {where}: {shown(value)} is not yyyyMMddTHHmmssZ") from None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected("bad_ts", f"feed {feed}: {where}: {shown(value)} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        if tz is None:
            raise Rejected("bad_ts", f"feed {feed}: {where}: {shown(value)} has no offset and the feed sets no "
                                     f"ts.tz")
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed.timestamp()


def checked(ts: float, received_at: float, limits: Limits, feed: str, where: str, raw: Any) -> float:
    if ts - received_at > limits.max_future_skew_s:
        raise Rejected("ts_in_future", f"feed {feed}: {where}: {shown(raw)} is {ts - received_at:.0f}s ahead of "
                                       f"the receive clock (limit {limits.max_future_skew_s:.0f}s)")
    if ts < Y2000:
        raise Rejected("bad_ts", f"feed {feed}: {where}: {shown(raw)} is before the year 2000 (a gateway with no "
                                 f"clock set, or the wrong ts.format)")
    return ts
