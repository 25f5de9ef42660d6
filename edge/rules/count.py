"""`count`: at least N events from one device within a sliding window (e.g. 3 fence breaches in 60 s)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from edge.message import Event
from edge.rules.base import EvaluatorBase, State, Verdict, WhenBase
from gridwatch.core.durations import Duration

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

KEYS = ("count",)


class Config(WhenBase):
    count: int = Field(ge=1, description="events needed inside the window")
    within: Duration = Field(gt=0)
    event: list[Literal["breach", "tamper", "restore", "fault"]] | None = Field(
        None, description="fence events that count; readings count when unset")

    @field_validator("event", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Evaluator(EvaluatorBase):
    timed = True

    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        self.cfg = cfg
        self.kind: str | None = spec.match.kind
        self.metric: str | None = spec.match.metric

    def accepts(self, ev: Event) -> bool:
        if ev.kind == "status" or (self.kind is not None and ev.kind != self.kind):
            return False
        if self.cfg.event is not None:
            return ev.kind == "fence" and ev.event in self.cfg.event
        return self.metric is None or self.metric in ev.metrics

    def observe(self, st: State, ev: Event) -> Verdict | None:
        times: list[float] = st.setdefault("t", [])
        times.append(ev.ts)
        self._trim(times, ev.ts)
        return Verdict(True, ev.ts, float(len(times))) if len(times) >= self.cfg.count else None

    def tick(self, st: State, now: float) -> Verdict | None:
        times: list[float] = st.get("t", [])
        if not times or now < times[0] + self.cfg.within:
            return None
        self._trim(times, now)
        return Verdict(False, now, float(len(times))) if len(times) < self.cfg.count else None

    def deadline(self, st: State) -> float | None:
        times = st.get("t")
        return times[0] + self.cfg.within if times else None

    def _trim(self, times: list[float], now: float) -> None:
        while times and times[0] <= now - self.cfg.within:
            times.pop(0)
