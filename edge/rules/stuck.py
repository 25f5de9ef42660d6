"""`stuck_for`: a metric frozen at one value (within `tolerance`) for too long is a device fault."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from edge.rules.base import MetricEvaluator, State, Verdict, WhenBase
from gridwatch.core.durations import Duration

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

KEYS = ("stuck_for",)


class Config(WhenBase):
    stuck_for: Duration = Field(gt=0)
    tolerance: float = Field(0.0, ge=0, description="changes this small still count as stuck")


class Evaluator(MetricEvaluator):
    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        super().__init__(spec)
        self.cfg = cfg

    def judge(self, st: State, v: float, ts: float) -> Verdict | None:
        ref = st.get("ref")
        if ref is None or abs(v - ref) > self.cfg.tolerance:
            st["ref"], st["since"] = v, ts
            return Verdict(False, ts, v)
        since = float(st["since"])
        if ts - since >= self.cfg.stuck_for:
            return Verdict(True, ts, v, start=since + self.cfg.stuck_for)
        return None
