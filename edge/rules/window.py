"""`avg` / `max` / `min` over a sliding duration of one metric, compared with a level."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from edge.durations import Duration
from edge.message import Event
from edge.rules.base import EvaluatorBase, Verdict, WhenBase, metric_value
from edge.rules.threshold import Level

KEYS = ("avg", "max", "min")


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
        self.agg = {"avg": lambda xs: sum(xs) / len(xs), "max": max, "min": min}[cfg.agg]

    def accepts(self, ev: Event) -> bool:
        return ev.kind == "sensor" and self.metric in ev.metrics

    def observe(self, st: dict[str, Any], ev: Event) -> Verdict | None:
        v = metric_value(ev, self.metric)
        if v is None:
            return None
        samples: list[list[float]] = st.setdefault("w", [])
        samples.append([ev.ts, v])
        horizon = ev.ts - self.cfg.over
        while samples and samples[0][0] < horizon:
            samples.pop(0)
        if len(samples) < self.cfg.min_samples:
            return None
        value = self.agg([s[1] for s in samples])
        return Verdict(self.cfg.check(value), ev.ts, value)
