"""The explicit registry of rule kinds, keyed by the `when:` keys each kind owns.

Order matters where kinds share keys: the windowed aggregates accept `above`/`below` too, so they are
listed before the plain threshold, which is tried last.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from edge.rules import (
    correlation,
    count,
    dwell,
    fence_event,
    hotspot,
    motion,
    rate,
    stale,
    stuck,
    tamper,
    threshold,
    window,
    zone_stat,
)

KINDS: dict[str, ModuleType] = {
    "window": window,
    "rate": rate,
    "stale": stale,
    "stuck": stuck,
    "count": count,
    "event": fence_event,
    "correlation": correlation,
    "motion_in_zone": motion,
    "dwell": dwell,
    "tamper": tamper,
    "hotspot": hotspot,
    "zone_stat": zone_stat,
    "threshold": threshold,
}


def kind_of(when: Any) -> str | None:
    """Name of the kind owning this `when:` mapping, or None when no kind claims it."""
    if not isinstance(when, dict):
        return None
    for name, module in KINDS.items():
        if any(k in when for k in module.KEYS):
            return name
    return None


def all_keys() -> list[str]:
    return [k for m in KINDS.values() for k in m.KEYS]
