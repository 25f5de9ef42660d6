"""Case-class analysis (类案分析): counts by category, grid, device, hour and day, repeated places and
devices, and repeat cases (重复件: a new case at a place and category closed within the last N days).

Pure: takes case rows, returns the numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class CaseRow:
    id: str
    category: str
    grid: str
    device: str | None
    opened_at: datetime
    closed_at: datetime | None


def case_stats(period: list[CaseRow], history: list[CaseRow], *, tz: str, repeat_days: int,
               min_repeats: int) -> dict[str, Any]:
    """`period`: cases opened in the period; `history`: cases closed before or during it (for repeats)."""
    zone = ZoneInfo(tz)
    local = [c.opened_at.astimezone(zone) for c in period]
    devices = Counter(c.device for c in period if c.device)
    places = Counter((c.grid, c.category) for c in period)
    closed: dict[tuple[str, str], list[tuple[str, datetime]]] = {}
    for c in history:
        if c.closed_at is not None:
            closed.setdefault((c.grid, c.category), []).append((c.id, c.closed_at))
    window = timedelta(days=repeat_days)
    repeats = []
    for c in period:
        before = [t for cid, t in closed.get((c.grid, c.category), ())
                  if cid != c.id and c.opened_at - window <= t <= c.opened_at]
        if before:
            repeats.append({"case_id": c.id, "grid": c.grid, "category": c.category,
                            "previous_closed_at": max(before).isoformat()})
    return {
        "total": len(period),
        "by_category": dict(Counter(c.category for c in period).most_common()),
        "by_grid": dict(Counter(c.grid for c in period).most_common()),
        "by_device": dict(devices.most_common()),
        "by_hour": [sum(1 for t in local if t.hour == h) for h in range(24)],
        "by_day": dict(sorted(Counter(t.date().isoformat() for t in local).items())),
        "repeated_devices": [{"device": d, "cases": n} for d, n in devices.most_common() if n >= min_repeats],
        "repeated_places": [{"grid": g, "category": k, "cases": n} for (g, k), n in places.most_common()
                            if n >= min_repeats],
        "repeat_cases": repeats,
    }
