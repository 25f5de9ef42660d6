"""Device models for the simulators: what each kind of device would publish at a given time.

Sensors have a realistic baseline (noise, slow drift, a daily cycle) and incidents that override it (a
gas leak, rising water); fences publish only events; cameras and thermal cameras render synthetic scenes
(simulators/scenes.py). Every model is deterministic for its seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# metric, baseline, noise sigma, drift per hour, daily amplitude
SENSOR_KINDS: dict[str, tuple[str, float, float, float, float]] = {
    "gas": ("ch4_ppm", 800.0, 30.0, 5.0, 60.0),
    "water": ("water_level_m", 1.2, 0.004, 0.002, 0.05),
    "strain": ("strain_ue", 120.0, 2.0, 0.5, 15.0),
    "temperature": ("temp_c", 21.0, 0.15, 0.05, 4.0),
    "smoke": ("smoke_obscuration_pct", 0.2, 0.03, 0.0, 0.05),
}
DAY = 86400.0


@dataclass
class SensorModel:
    model: str
    seed: int = 1
    utc_offset_h: float = 8.0  # local time of the site (the daily cycle peaks at 14:00 local)

    def __post_init__(self) -> None:
        if self.model not in SENSOR_KINDS:
            raise ValueError(f"unknown sensor model {self.model!r}; expected one of {sorted(SENSOR_KINDS)}")
        self.metric, self.base, self.noise, self.drift, self.daily = SENSOR_KINDS[self.model]
        self.rng = random.Random(self.seed)

    def value(self, t: float, clock: float) -> float:
        """The reading at scenario time t; `clock` (epoch seconds) places the daily cycle."""
        local_h = ((clock / 3600.0) + self.utc_offset_h) % 24.0
        cycle = self.daily * math.cos(2 * math.pi * (local_h - 14.0) / 24.0)
        v = self.base + self.drift * t / 3600.0 + cycle + self.rng.gauss(0.0, self.noise)
        return max(0.0, v)


def rounded(metric: str, v: float) -> float:
    return round(v, 3 if metric == "water_level_m" else 2)
