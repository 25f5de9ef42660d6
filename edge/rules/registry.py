"""The explicit registry of rule kinds, keyed by the `when:` keys each kind owns.

Order matters where kinds share keys: the windowed aggregates accept `above`/`below` too, so they are
listed before the plain threshold, which is tried last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from edge.rules import (
    correlation,
    count,
    deviation,
    dwell,
    fence_event,
    forecast,
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
from edge.rules.base import Evaluator

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec


@dataclass(frozen=True, slots=True)
class RuleKind:
    """One kind of rule condition: the `when:` keys it owns, the model that validates its `when:`, how to make
    its evaluator for a rule, whether it needs `match.metric`, and how it expands one rule into several (a
    hotspot's pre-alarm), if it does."""

    name: str
    keys: tuple[str, ...]
    config: type[BaseModel]
    evaluator: Callable[[RuleSpec, Any], Evaluator]
    needs_metric: bool
    expand: Callable[[RuleSpec], list[RuleSpec]] | None = None

    @classmethod
    def of(cls, name: str, module: ModuleType) -> RuleKind:
        """The kind a rule module defines (its `KEYS`, `Config`, `Evaluator` and optional `expand`)."""
        return cls(name, tuple(module.KEYS), module.Config, module.Evaluator, bool(module.Evaluator.needs_metric),
                   getattr(module, "expand", None))


KINDS: dict[str, RuleKind] = {name: RuleKind.of(name, module) for name, module in (
    ("window", window),
    ("rate", rate),
    ("forecast", forecast),
    ("deviation", deviation),
    ("stale", stale),
    ("stuck", stuck),
    ("count", count),
    ("event", fence_event),
    ("correlation", correlation),
    ("motion_in_zone", motion),
    ("dwell", dwell),
    ("tamper", tamper),
    ("hotspot", hotspot),
    ("zone_stat", zone_stat),
    ("threshold", threshold),
)}


def kind_of(when: Any) -> str | None:
    """Name of the kind owning this `when:` mapping, or None when no kind claims it."""
    if not isinstance(when, dict):
        return None
    for name, kind in KINDS.items():
        if any(k in when for k in kind.keys):
            return name
    return None


def all_keys() -> list[str]:
    return [k for kind in KINDS.values() for k in kind.keys]
