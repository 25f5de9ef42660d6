"""`avg` / `max` / `min` over a sliding duration of one metric, compared with a level."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from edge.rules.base import MetricEvaluator, State, Verdict, WhenBase
from edge.rules.threshold import Level
from gridwatch.core.durations import Duration

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

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


class Evaluator(MetricEvaluator):
    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        super().__init__(spec)
        self.cfg = cfg
        self.kind = cfg.agg
        folds: dict[str, Callable[[float, float], float]] = {"avg": operator.add, "max": max, "min": min}
        self.fold = folds[cfg.agg]
        self.pick: Callable[..., float] = max if cfg.agg == "max" else min

    def judge(self, st: State, v: float, ts: float) -> Verdict | None:
        # Samples go into BUCKETS buckets per window, so state and work stay bounded at any reading rate;
        # the window's edge is exact to 1/BUCKETS of its length. Buckets are one flat list of
        # (index, sum or extreme, count) triples: a list per bucket made the garbage collector's full
        # passes over thousands of states show up as 40 ms stalls. Totals are kept running ("n" count,
        # "s" sum or extreme) so a reading costs O(1) amortised.
        idx = math.floor(ts * BUCKETS / self.cfg.over)
        b: list[float] = st.setdefault("b", [])
        if b and b[-3] == idx:
            b[-2] = self.fold(b[-2], v)
            b[-1] += 1
        elif not b or idx > b[-3]:
            b += (idx, v, 1)
        else:  # older than the newest bucket: the engine drops out-of-order readings before this
            return None
        st["n"] = st.get("n", 0) + 1
        st["s"] = self.fold(st["s"], v) if "s" in st else v
        first = idx - BUCKETS
        drop, rescan = 0, False
        while b[drop] <= first:
            st["n"] -= b[drop + 2]
            if self.kind == "avg":
                st["s"] -= b[drop + 1]
            else:
                rescan = rescan or b[drop + 1] == st["s"]
            drop += 3
        if drop:
            del b[:drop]
        if rescan:
            st["s"] = self.pick(b[1::3])
        if st["n"] < self.cfg.min_samples:
            return None
        value = st["s"] / st["n"] if self.kind == "avg" else st["s"]
        return Verdict(self.cfg.check(value), ts, value)
