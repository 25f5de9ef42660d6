"""`avg` / `max` / `min` over a sliding duration of one metric, compared with a level."""

from __future__ import annotations

import math
import operator
from typing import Any

from pydantic import Field, model_validator

from edge.durations import Duration
from edge.message import Event
from edge.rules.base import EvaluatorBase, Verdict, WhenBase
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
        v = ev.metrics.get(self.metric)
        if v is None:
            return None
        # Samples go into BUCKETS buckets per window ([index, sum or extreme, count]), so state and work stay
        # bounded whatever the reading rate; the window's edge is exact to 1/BUCKETS of its length.
        # Totals are kept running ("n" count, "s" sum or extreme) so a reading costs O(1) amortised.
        idx = math.floor(ev.ts * BUCKETS / self.cfg.over)
        buckets: list[list[float]] = st.setdefault("b", [])
        last = buckets[-1] if buckets else None
        if last is not None and last[0] == idx:
            last[1] = self.fold(last[1], v)
            last[2] += 1
        elif last is None or idx > last[0]:
            buckets.append([idx, v, 1])
        else:  # older than the newest bucket: the engine drops out-of-order readings before this
            return None
        st["n"] = st.get("n", 0) + 1
        st["s"] = self.fold(st["s"], v) if "s" in st else v
        first = idx - BUCKETS
        rescan = False
        while buckets[0][0] <= first:
            gone = buckets.pop(0)
            st["n"] -= gone[2]
            if self.kind == "avg":
                st["s"] -= gone[1]
            else:
                rescan = rescan or gone[1] == st["s"]
        if rescan:
            st["s"] = self.pick(b[1] for b in buckets)
        if st["n"] < self.cfg.min_samples:
            return None
        value = st["s"] / st["n"] if self.kind == "avg" else st["s"]
        return Verdict(self.cfg.check(value), ev.ts, value)
