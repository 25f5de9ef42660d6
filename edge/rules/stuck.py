"""`stuck_for`: a metric frozen at one value (within `tolerance`) for too long is a device fault."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from edge.durations import Duration
from edge.message import Event
from edge.rules.base import EvaluatorBase, Verdict, WhenBase

KEYS = ("stuck_for",)


class Config(WhenBase):
    stuck_for: Duration = Field(gt=0)
    tolerance: float = Field(0.0, ge=0, description="changes this small still count as stuck")


class Evaluator(EvaluatorBase):
    needs_metric = True

    def __init__(self, spec: Any, cfg: Config) -> None:
        self.cfg = cfg
        self.metric: str = spec.match.metric

    def accepts(self, ev: Event) -> bool:
        return ev.kind == "sensor" and self.metric in ev.metrics

    def observe(self, st: dict[str, Any], ev: Event) -> Verdict | None:
        v = ev.metrics.get(self.metric)
        if v is None:
            return None
        ref = st.get("ref")
        if ref is None or abs(v - ref) > self.cfg.tolerance:
            st["ref"], st["since"] = v, ev.ts
            return Verdict(False, ev.ts, v)
        since = float(st["since"])
        if ev.ts - since >= self.cfg.stuck_for:
            return Verdict(True, ev.ts, v, start=since + self.cfg.stuck_for)
        return None
