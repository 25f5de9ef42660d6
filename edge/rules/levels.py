"""Warning levels (预警 蓝/黄/橙/红) of a rule, and the pure step that moves an episode's level.

A rule kind that supports levels lets its `when:` name `levels:`, a list of `{level, severity?, …}` where the
`…` are that kind's own terms for the level (a line, a horizon, a number of spreads). The evaluator judges the
highest level met at each reading and says it in its `Verdict.level`; the engine keeps the episode's level
with `step`: a climb takes effect once the higher level has held for the rule's `for`, a fall once the lower
one has held for its `clear_for`, so a reading that wobbles across a level's line does not flap it. Each change
while firing is one `warning` alert (`gridwatch.core.warning`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from gridwatch.core.config import Strict
from gridwatch.core.names import Severity
from gridwatch.core.warning import RANK, SEVERITY, WarningLevel

if TYPE_CHECKING:
    from edge.rules.episode import Episode


class LevelBase(Strict):
    """One level of a rule; kinds subclass it with their terms."""

    level: WarningLevel
    severity: Severity | None = Field(None, description="the severity this level raises (default: blue info, "
                                                        "yellow minor, orange major, red critical)")

    @property
    def raises(self) -> Severity:
        return self.severity if self.severity is not None else SEVERITY[self.level]


def ordered(levels: Sequence[LevelBase] | None) -> Sequence[LevelBase] | None:
    """Validator body: levels named once each, written from the lowest (blue) to the highest (red)."""
    if levels is None:
        return None
    if not levels:
        raise ValueError("levels: expected at least one level, or no levels key")
    names = [lv.level for lv in levels]
    if len(set(names)) != len(names):
        raise ValueError(f"levels: each level once, got {names}")
    if [RANK[n] for n in names] != sorted(RANK[n] for n in names):
        raise ValueError(f"levels: expected lowest first (blue, yellow, orange, red), got {names}")
    return levels


class Levelled(Strict):
    """Mixin of the `when:` models whose kind supports levels (each kind types `levels` with its own model)."""

    @field_validator("levels", check_fields=False)
    @classmethod
    def _ordered(cls, levels: Any) -> Any:
        return ordered(levels)


def severities(when: Any) -> dict[str, Severity]:
    """Level name -> severity, for a rule's `when:` (empty when it names no levels)."""
    return {lv.level: lv.raises for lv in (getattr(when, "levels", None) or ())}


def step(st: Episode, judged: WarningLevel, ts: float, hold: float, clear_hold: float) -> bool:
    """Move the episode's level `st["lvl"]` towards the level `judged` at `ts`; True when it changed. The
    episode keeps `lvs` = since when readings have judged a level above (`+`) or below (`-`) the current one."""
    current = st.get("lvl")
    if current is None or judged == current:
        st.pop("lvs", None)
        return False
    up = RANK[judged] > RANK[current]
    sign = "+" if up else "-"
    since = st.get("lvs")
    if since is None or since[0] != sign:
        st["lvs"] = since = [sign, ts]
    if ts - float(since[1]) < (hold if up else clear_hold):
        return False
    st["lvl"] = judged
    st.pop("lvs", None)
    return True
