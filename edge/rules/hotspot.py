"""`hotspot`: thermal pixels above `above_c` inside an optional zone, at least `min_pixels` of them for
`for_frames` frames, clearing below `clear_below_c`; optionally a zone heating faster than `rise_c` per
minute. `warn_c` adds a pre-alarm: a derived rule `<id>:warn` one severity lower at the warning level."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field, model_validator

from edge.message import Event
from edge.rules import zones
from edge.rules.base import EvaluatorBase, Overlay, State, Strict, Verdict, WhenBase
from gridwatch.core.durations import Duration
from gridwatch.core.names import Severity

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

KEYS = ("hotspot",)
LOWER: dict[str, Severity] = {"critical": "major", "major": "minor", "minor": "info", "info": "info"}


class HotspotSpec(Strict):
    above_c: float = Field(ge=-273.15, le=2000)
    min_pixels: int = Field(1, ge=1)
    for_frames: int = Field(1, ge=1, le=1000)
    clear_below_c: float | None = Field(None, description="hysteresis: stays hot until the zone is below this")
    warn_c: float | None = Field(None, description="pre-alarm level under above_c, raised as <id>:warn")
    rise_c: float | None = Field(None, gt=0, description="also fire when the zone's maximum rises this fast")
    per: Duration = Field(60.0, gt=0, description="rise_c is per this span (default a minute)")
    zone: zones.Polygon | None = None
    ignore: list[zones.Polygon] = Field(default_factory=list)

    @model_validator(mode="after")
    def _levels(self) -> HotspotSpec:
        if self.clear_below_c is not None and self.clear_below_c > self.above_c:
            raise ValueError(f"clear_below_c ({self.clear_below_c}) must not exceed above_c ({self.above_c})")
        if self.warn_c is not None and self.warn_c >= self.above_c:
            raise ValueError(f"warn_c ({self.warn_c}) must be below above_c ({self.above_c})")
        return self


class Config(WhenBase):
    hotspot: HotspotSpec


def expand(spec: RuleSpec) -> list[RuleSpec]:
    """The rule itself, plus its pre-alarm rule when `warn_c` is set."""
    assert isinstance(spec.when, Config)
    h = spec.when.hotspot
    if h.warn_c is None:
        return [spec]
    clear = h.warn_c if h.clear_below_c is None else min(h.clear_below_c, h.warn_c)
    warn_when = spec.when.model_copy(update={"hotspot": h.model_copy(
        update={"above_c": h.warn_c, "clear_below_c": clear, "warn_c": None, "rise_c": None})})
    warn = spec.model_copy(update={"id": f"{spec.id}:warn", "when": warn_when, "severity": LOWER[spec.severity],
                                   "labels": {**spec.labels, "level": "warning"}})
    return [spec, warn]


class Evaluator(EvaluatorBase):
    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        self.cfg = cfg.hotspot
        self.clear_below = self.cfg.above_c if self.cfg.clear_below_c is None else self.cfg.clear_below_c

    def accepts(self, ev: Event) -> bool:
        return ev.kind == "thermal" and ev.celsius is not None

    def zone_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        return zones.mask(self.cfg.zone, self.cfg.ignore, shape) > 0

    def observe(self, st: State, ev: Event) -> Verdict | None:
        c = self.cfg
        temps = ev.celsius
        assert temps is not None
        inside = temps[self.zone_mask(temps.shape)] if c.zone or c.ignore else temps
        if inside.size == 0:
            return None
        zmax = float(inside.max())
        hot = int(np.count_nonzero(inside > c.above_c)) >= c.min_pixels
        st["n"] = st.get("n", 0) + 1 if hot else 0
        rising = c.rise_c is not None and self._rise(st, ev.ts, zmax) > c.rise_c
        if st["n"] >= c.for_frames or rising:
            return Verdict(True, ev.ts, round(zmax, 2), note={"trigger": "rise" if rising and not hot else "level"})
        if zmax < self.clear_below and not rising:
            return Verdict(False, ev.ts, round(zmax, 2))
        return None

    def _rise(self, st: State, ts: float, zmax: float) -> float:
        """Rise of the zone's maximum in degrees per `per`, over the last `per` of samples."""
        per = self.cfg.per
        samples: list[list[float]] = st.setdefault("s", [])
        if not samples or ts - samples[-1][0] >= per / 30:
            samples.append([ts, zmax])
        while len(samples) > 2 and ts - samples[1][0] >= per:
            samples.pop(0)
        t0, v0 = samples[0]
        span = ts - t0
        return (zmax - v0) / span * per if span >= per / 2 else 0.0

    def overlay(self, ev: Event) -> Overlay:
        temps = ev.celsius
        assert temps is not None
        hot = ((temps > self.cfg.above_c) & self.zone_mask(temps.shape)).astype(np.uint8) * 255
        return [p for p in [self.cfg.zone, *self.cfg.ignore] if p], zones.regions(hot)
