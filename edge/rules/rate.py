"""`rate_above` / `rate_below`: change of one metric per `per` window (e.g. water rising 0.2 m/min)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from edge.rules.base import MetricEvaluator, State, Verdict, WhenBase
from gridwatch.core.durations import Duration

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

KEYS = ("rate_above", "rate_below")


class Config(WhenBase):
    rate_above: float | None = None
    rate_below: float | None = None
    per: Duration = Field(60.0, description="the rate is change per this duration, over this window")
    min_span: Duration | None = Field(
        None, description="judge only when the samples span this long (default per/2): a rate over a few "
                          "seconds of readings is mostly noise")

    @model_validator(mode="after")
    def _one(self) -> Config:
        if (self.rate_above is None) == (self.rate_below is None):
            raise ValueError("expected exactly one of rate_above, rate_below")
        if self.per <= 0:
            raise ValueError("per: expected a duration longer than 0s")
        return self


class Evaluator(MetricEvaluator):
    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        super().__init__(spec)
        self.cfg = cfg

    def judge(self, st: State, v: float, ts: float) -> Verdict | None:
        # (time, value) pairs in one flat list (few objects for the garbage collector to walk), at most
        # one every per/60: bounded state at any reading rate
        w: list[float] = st.setdefault("w", [])
        if not w or ts - w[-2] >= self.cfg.per / 60:
            w += (ts, v)
        horizon = ts - self.cfg.per
        # keep one sample at or before the horizon so the rate spans the whole window
        drop = 0
        while len(w) - drop > 4 and w[drop + 2] <= horizon:
            drop += 2
        if drop:
            del w[:drop]
        t0, v0 = w[0], w[1]
        min_span = self.cfg.per / 2 if self.cfg.min_span is None else self.cfg.min_span
        if ts <= t0 or ts - t0 < min_span:
            return None
        rate = (v - v0) / (ts - t0) * self.cfg.per
        if self.cfg.rate_above is not None:
            return Verdict(rate > self.cfg.rate_above, ts, rate)
        assert self.cfg.rate_below is not None
        return Verdict(rate < self.cfg.rate_below, ts, rate)
