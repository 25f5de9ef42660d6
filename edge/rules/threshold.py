"""`above` / `below` / `outside`: a level on one metric, with hold time and hysteresis."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import model_validator

from edge.rules.base import MetricEvaluator, State, Strict, Verdict, WhenBase

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

KEYS = ("above", "below", "outside")


class Level(Strict):
    """A level condition; reused by the windowed aggregates."""

    above: float | None = None
    below: float | None = None
    outside: tuple[float, float] | None = None
    clear_below: float | None = None
    clear_above: float | None = None

    @model_validator(mode="after")
    def _one_level(self) -> Level:
        given = [k for k in KEYS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of above, below, outside; got {given or 'none'}")
        if self.clear_below is not None:
            if self.above is None:
                raise ValueError("clear_below goes with above")
            if self.clear_below > self.above:
                raise ValueError(f"clear_below ({self.clear_below}) must not exceed above ({self.above})")
        if self.clear_above is not None:
            if self.below is None:
                raise ValueError("clear_above goes with below")
            if self.clear_above < self.below:
                raise ValueError(f"clear_above ({self.clear_above}) must not be under below ({self.below})")
        if self.outside is not None and self.outside[0] >= self.outside[1]:
            raise ValueError("outside: expected [low, high] with low < high")
        return self

    def check(self, v: float) -> bool | None:
        """True = active, False = clear, None = inside the hysteresis band (keep the current state)."""
        if self.above is not None:
            if v > self.above:
                return True
            return None if self.clear_below is not None and v >= self.clear_below else False
        if self.below is not None:
            if v < self.below:
                return True
            return None if self.clear_above is not None and v <= self.clear_above else False
        assert self.outside is not None
        return v < self.outside[0] or v > self.outside[1]

    @property
    def threshold(self) -> float:
        for v in (self.above, self.below):
            if v is not None:
                return v
        assert self.outside is not None
        return self.outside[1]


class Config(WhenBase, Level):
    pass


class Evaluator(MetricEvaluator):
    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        super().__init__(spec)
        self.cfg = cfg
        self.check = cfg.check

    def judge(self, st: State, v: float, ts: float) -> Verdict | None:
        return Verdict(self.check(v), ts, v)
