"""Suppression (`suppressed_by`, `suppress_scope`): which rules fire per device and grid, counted as episodes
fire and clear, and whether a rule's episode is held back by a firing suppressor in its scope. The engine
keeps the counters; these functions move and read them."""

from __future__ import annotations

from collections import Counter

from edge.rules.episode import Episode
from edge.rules.ruleset import CompiledRule


def index(firing: Counter[tuple[str, str]], suppressed: set[str], key: str, st: Episode, delta: int) -> None:
    """An episode began (+1) or ended (-1) firing: its rule's count per device and per grid moves; a suppressed
    episode is remembered for its release."""
    if delta:
        for scope in ("d:" + st["dev"], "g:" + st["grid"]):
            firing[(st["r"], scope)] += delta
            if firing[(st["r"], scope)] <= 0:
                del firing[(st["r"], scope)]
    if st.get("sup"):
        suppressed.add(key)


def blocks(firing: Counter[tuple[str, str]], cr: CompiledRule, st: Episode) -> bool:
    """A rule that suppresses this one fires in its scope (the device, or the grid)."""
    scope = ("d:" + st["dev"]) if cr.spec.suppress_scope == "device" else ("g:" + st["grid"])
    return any(firing.get((sid, scope), 0) > 0 for sid in cr.spec.suppressed_by)
