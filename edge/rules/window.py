"""`avg` / `max` / `min` over a sliding duration of one metric, compared with a level."""

from __future__ import annotations

import math
import operator
from typing import Any

from pydantic import Field, model_validator

from edge.durations import Duration
from edge.message import Event
from edge.rules.base import EvaluatorBase, Verdict, WhenBase, metric_value
from edge.rules.threshold import Level

KEYS = ("avg", "max", "min")
BUCKETS = 60


class Config(WhenBase, Level):
    avg: Duration | None = Field(None, description="window length of the mean")
    max: Duration | None = None
    min: Duration | None = None
    min_samples: int = Field(1, ge=1, description="samples needed in the window before it is judged")

    @model_validator(mode="after")
    def _one_window(self) -> Config:
        given = [k for k in KEYS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of avg, max, min; got {given}")
        if getattr(self, given[0]) <= 0:
            raise ValueError(f"{given[0]}: expected a window longer than 0s")
        return self

    @property
    def agg(self) -> str:
        return next(k for k in KEYS if getattr(self, k) is not None)

    @property
    def over(self) -> float:
        return float(getattr(self, self.agg))


class Evaluator(EvaluatorBase):
    needs_metric = True

    def __init__(self, spec: Any, cfg: Config) -> None:
        self.cfg = cfg
        self.metric: str = spec.match.metric
        self.kind = cfg.agg
        self.fold = {"avg": operator.add, "max": max, "min": min}[cfg.agg]
        self.pick = max if cfg.agg == "max" else min

    def accepts(self, ev: Event) -> bool:
        return ev.kind == "sensor" and self.metric in ev.metrics

    def observe(self, st: dict[str, Any], ev: Event) -> Verdict | None:
        v = metric_value(ev, self.metric)
        if v is None:
            return None
        # Samples go into BUCKETS buckets per window ([index, sum or extreme, count]), so state and work stay
        # bounded whatever the reading rate; the window's edge is exact to 1/BUCKETS of its length.
        idx = math.floor(ev.ts * BUCKETS / self.cfg.over)
        buckets: list[list[float]] = st.setdefault("b", [])
        last = buckets[-1] if buckets else None
        if last is not None and last[0] == idx:
            last[1] = self.fold(last[1], v)
            last[2] += 1
        elif last is None or idx > last[0]:
            buckets.append([idx, v, 1])
        first = idx - BUCKETS
        while buckets[0][0] <= first:
            buckets.pop(0)
        count = sum(b[2] for b in buckets)
        if count < self.cfg.min_samples:
            return None
        if self.kind == "avg":
            value = sum(b[1] for b in buckets) / count
        else:
            value = self.pick(b[1] for b in buckets)
        return Verdict(self.cfg.check(value), ev.ts, value)
