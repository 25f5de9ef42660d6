"""`zone_stat`: a statistic of a thermal zone (max / mean / min temperature) against a level, with the
same hold times and hysteresis as a sensor threshold."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from edge.message import Event
from edge.rules import zones
from edge.rules.base import EvaluatorBase, Overlay, State, Verdict, WhenBase

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec
from edge.rules.threshold import Level

KEYS = ("zone_stat",)


class ZoneStatSpec(Level):
    stat: Literal["max", "mean", "min"] = "max"
    zone: zones.Polygon | None = None
    ignore: list[zones.Polygon] = Field(default_factory=list)


class Config(WhenBase):
    zone_stat: ZoneStatSpec


class Evaluator(EvaluatorBase):
    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        self.cfg = cfg.zone_stat
        self.threshold = self.cfg.threshold
        reducers: dict[str, Callable[[Any], Any]] = {"max": np.max, "mean": np.mean, "min": np.min}
        self.reduce = reducers[self.cfg.stat]

    def accepts(self, ev: Event) -> bool:
        return ev.kind == "thermal" and ev.celsius is not None

    def observe(self, st: State, ev: Event) -> Verdict | None:
        temps = ev.celsius
        assert temps is not None
        if self.cfg.zone or self.cfg.ignore:
            temps = temps[zones.mask(self.cfg.zone, self.cfg.ignore, temps.shape) > 0]
        if temps.size == 0:
            return None
        v = round(float(self.reduce(temps)), 2)
        return Verdict(self.cfg.check(v), ev.ts, v)

    def overlay(self, ev: Event) -> Overlay:
        return [p for p in [self.cfg.zone, *self.cfg.ignore] if p], []
