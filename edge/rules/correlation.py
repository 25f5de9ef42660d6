"""`all_of` / `any_of`: a rule that fires when other rules fire together within a window and scope.

It sees alerts, not readings: the engine hands it each `firing` / `resolved` alert of the rules it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from edge.message import Event
from edge.rules.base import EvaluatorBase, State, Strict, Verdict
from gridwatch.core.alert import Alert
from gridwatch.core.durations import Duration

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

KEYS = ("all_of", "any_of")


class Config(Strict):
    all_of: list[str] | None = Field(None, min_length=2)
    any_of: list[str] | None = Field(None, min_length=1)
    within: Duration = Field(60.0, gt=0, description="all named rules must have fired within this window")
    same: Literal["device", "grid"] = "grid"

    @model_validator(mode="after")
    def _one(self) -> Config:
        if (self.all_of is None) == (self.any_of is None):
            raise ValueError("expected exactly one of all_of, any_of")
        return self

    @property
    def refs(self) -> list[str]:
        return list(self.all_of or self.any_of or [])


class Evaluator(EvaluatorBase):
    """Sees no events; the engine hands it alerts (`on_alert`) with their device time as a number."""

    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        self.cfg = cfg
        self.refs = cfg.refs

    def accepts(self, ev: Event) -> bool:
        return False

    def observe(self, st: State, ev: Event) -> Verdict | None:
        return None

    def scope(self, alert: Alert) -> str:
        return alert.device_id if self.cfg.same == "device" else alert.grid_id

    def on_alert(self, st: State, rule_id: str, firing: bool, ts: float) -> Verdict | None:
        hits: dict[str, float] = st.setdefault("hits", {})
        active: list[str] = st.setdefault("active", [])
        if firing:
            hits[rule_id] = ts
            if rule_id not in active:
                active.append(rule_id)
            recent = [r for r in self.refs if r in hits and ts - hits[r] <= self.cfg.within]
            if self.cfg.all_of is not None and len(recent) < len(self.refs):
                return None
            return Verdict(True, ts)
        if rule_id in active:
            active.remove(rule_id)
        return Verdict(False, ts) if not active else None
