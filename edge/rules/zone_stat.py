"""`zone_stat`: a statistic of a thermal zone (max / mean / min temperature) against a level, with the
same hold times and hysteresis as a sensor threshold."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from edge.message import Event
from edge.rules import zones
from edge.rules.base import EvaluatorBase, Verdict, WhenBase
from edge.rules.threshold import Level

KEYS = ("zone_stat",)


class ZoneStatSpec(Level):
    stat: Literal["max", "mean", "min"] = "max"
    zone: zones.Polygon | None = None
    ignore: list[zones.Polygon] = Field(default_factory=list)


class Config(WhenBase):
    zone_stat: ZoneStatSpec


class Evaluator(EvaluatorBase):
    needs_metric = False

    def __init__(self, spec: Any, cfg: Config) -> None:
        self.cfg = cfg.zone_stat
        self.threshold = self.cfg.threshold
        self.reduce = {"max": np.max, "mean": np.mean, "min": np.min}[self.cfg.stat]

    def accepts(self, ev: Event) -> bool:
        return ev.kind == "thermal" and "celsius" in ev.extra

    def observe(self, st: dict[str, Any], ev: Event) -> Verdict | None:
        temps = ev.extra["celsius"]
        if self.cfg.zone or self.cfg.ignore:
            temps = temps[zones.mask(self.cfg.zone, self.cfg.ignore, temps.shape) > 0]
        if temps.size == 0:
            return None
        v = round(float(self.reduce(temps)), 2)
        return Verdict(self.cfg.check(v), ev.ts, v)

    def overlay(self, ev: Event) -> tuple[list[Any], list[tuple[float, float, float, float]]]:
        return [p for p in [self.cfg.zone, *self.cfg.ignore] if p], []
