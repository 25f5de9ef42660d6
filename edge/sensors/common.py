"""Validation helpers shared by the feed decoders: JSON bodies, timestamps and numbers."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge.errors import Rejected


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-agent limits on what a message may be."""

    max_payload_bytes: int = 65536
    max_future_skew_s: float = 300.0
    clock_tolerance_s: float = 5.0  # device time further ahead than this is replaced by the receive time
    max_metrics: int = 64
    max_frame_bytes: int = 2 * 1024 * 1024
    max_frame_pixels: int = 3840 * 2160
    work_width: int = 320  # camera frames are decoded reduced towards this width


def check_size(payload: bytes, limits: Limits) -> None:
    if len(payload) > limits.max_payload_bytes:
        raise Rejected("oversize", f"payload is {len(payload)} bytes, limit {limits.max_payload_bytes}")


def load_object(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejected("bad_json", f"payload is not JSON: {exc}") from None
    except RecursionError:  # thousands of nested brackets: Python's parser gives up (no message is that deep)
        raise Rejected("bad_json", "payload is nested too deeply to be a gateway message") from None
    if not isinstance(body, dict):
        raise Rejected("bad_json", f"payload must be a JSON object, got {type(body).__name__}")
    return body


def parse_ts(value: Any, received_at: float, limits: Limits) -> float:
    """RFC 3339 string or epoch milliseconds -> epoch seconds, refusing times too far ahead."""
    if value is None:
        raise Rejected("missing_field", "field 'ts' is required")
    if isinstance(value, bool):
        raise Rejected("wrong_type", "field 'ts' must be an RFC 3339 string or epoch milliseconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise Rejected("not_finite", "field 'ts' is NaN or infinite")
        ts = float(value) / 1000.0
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Rejected("bad_ts", f"field 'ts' {value!r} is not RFC 3339") from None
        if parsed.tzinfo is None:
            raise Rejected("bad_ts", f"field 'ts' {value!r} has no time zone offset")
        ts = parsed.timestamp()
    else:
        raise Rejected("wrong_type", "field 'ts' must be an RFC 3339 string or epoch milliseconds")
    if ts - received_at > limits.max_future_skew_s:
        raise Rejected("ts_in_future", f"ts is {ts - received_at:.0f}s ahead of the receive clock "
                                       f"(limit {limits.max_future_skew_s:.0f}s)")
    if ts < 946684800:  # 2000-01-01: a gateway with no clock set
        if isinstance(value, int | float) and 946684800 <= value < 1e11:
            raise Rejected("bad_ts", f"ts {value!r} looks like epoch seconds; the native contract takes epoch "
                                     f"milliseconds or RFC 3339 (a mapped feed can say ts.format: epoch_s)")
        raise Rejected("bad_ts", f"ts {value!r} is before the year 2000")
    return ts


def parse_seq(body: dict[str, Any]) -> int | None:
    seq = body.get("seq")
    if seq is None:
        return None
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise Rejected("wrong_type", f"field 'seq' must be an integer, got {type(seq).__name__}")
    return seq


def number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected("wrong_type", f"metric {name!r} must be a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise Rejected("not_finite", f"metric {name!r} is NaN or infinite")
    return out

