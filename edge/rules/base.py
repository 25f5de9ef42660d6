"""The shared parts of a rule: its config models (match, schedule, spec) and what an evaluator returns.

An evaluator is plain logic: it looks at one event (or at the clock) and its own state dict, and answers
with a Verdict — condition active, cleared, or unchanged — that the engine's episode machine turns into
`firing` / `resolved` alerts. `Evaluator` is the protocol the engine calls; `EvaluatorBase` gives every
hook its default and `MetricEvaluator` is the base of the rules on one sensor metric.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from edge.message import Event
from gridwatch.core.config import Strict, TimeZone
from gridwatch.core.durations import Duration
from gridwatch.core.kinds import FeedKind
from gridwatch.core.names import RULE_ID, Severity
from gridwatch.core.warning import WarningLevel

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec
    from edge.rules.zones import Polygon

__all__ = ["RULE_ID", "Severity", "Strict"]  # re-exported for the rule modules

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class WhenBase(Strict):
    """Timing every condition kind accepts: hold before firing, hold before clearing."""

    for_: Duration = Field(0.0, alias="for", description="condition must hold this long before firing")
    clear_for: Duration = Field(0.0, description="condition must be gone this long before resolving")


class Match(Strict):
    kind: FeedKind | None = None
    metric: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    devices: list[str] = Field(default_factory=list, description="device id globs; empty = all")
    grids: list[str] = Field(default_factory=list, description="grid id globs; empty = all")

    def selects(self, grid: str, device: str) -> bool:
        if self.devices and not any(fnmatch.fnmatchcase(device, p) for p in self.devices):
            return False
        return not self.grids or any(fnmatch.fnmatchcase(grid, p) for p in self.grids)


_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class Schedule(Strict):
    """Windows of local time in which a rule is active, e.g. `["22:00-06:00"]` (crosses midnight)."""

    active: list[str] = Field(min_length=1)
    tz: TimeZone = "UTC"
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None

    @field_validator("active")
    @classmethod
    def _spans(cls, spans: list[str]) -> list[str]:
        for s in spans:
            if not _SPAN.match(s):
                raise ValueError(f"expected time spans like '22:00-06:00', got {s!r}")
        return spans


    def active_at(self, ts: float) -> bool:
        local = datetime.fromtimestamp(ts, ZoneInfo(self.tz))
        now = local.time()
        for span in self.active:
            m = _SPAN.match(span)
            assert m
            start = time(int(m.group(1)), int(m.group(2)))
            end_h = int(m.group(3))
            end = time(23, 59, 59, 999999) if end_h == 24 else time(end_h, int(m.group(4)))
            if start <= end:
                inside, day = start <= now < end, local.weekday()
            else:  # crosses midnight: the early part belongs to the previous day's window
                inside = now >= start or now < end
                day = local.weekday() if now >= start else (local.weekday() - 1) % 7
            if inside and (self.days is None or DAYS[day] in self.days):
                return True
        return False


@dataclass(slots=True)
class Verdict:
    """What an evaluator concluded: cond True = active, False = cleared, None = no change."""

    cond: bool | None
    ts: float
    value: float | None = None
    start: float | None = None  # episode start when it is not the event time (stale: last seen + limit)
    note: dict[str, str] | None = None  # labels the alert carries about this episode (tamper kind, trigger)
    level: WarningLevel | None = None  # the highest warning level met (a rule with `levels:`), else None
    reason: str | None = None  # why a clearing verdict ends the episode (`resolved_by` of the resolve)


State = dict[str, Any]
"""An evaluator's own JSON-able state for one (rule, device, sub); the engine persists it."""

Box = tuple[float, float, float, float]
Overlay = tuple[list["Polygon | None"], list[Box]]
"""What a video rule draws on its evidence: polygons (zone, then ignore masks) and detected boxes."""


class Evaluator(Protocol):
    """One rule kind's logic, as the engine calls it."""

    needs_metric: bool  # the rule needs match.metric and is indexed by it
    timed: bool  # deadline() can return a time: the engine keeps a timer for the state
    fixed_sub: bool  # sub() is always "": the state key does not depend on the event
    hold: float | None  # overrides the rule's `for` (a kind with its own hold setting), else None
    clear_hold: float | None  # likewise for `clear_for`
    clock_keys: tuple[str, ...]  # state stamps the timers compare with the agent's clock: moved when it steps

    def accepts(self, ev: Event) -> bool: ...
    def sub(self, ev: Event) -> str: ...
    def observe(self, st: State, ev: Event) -> Verdict | None: ...
    def tick(self, st: State, now: float) -> Verdict | None: ...
    def deadline(self, st: State) -> float | None: ...
    def seed(self, st: State, now: float) -> None: ...
    def overlay(self, ev: Event) -> Overlay | None: ...
    def keep(self, old: Evaluator, st: State) -> State: ...


C = TypeVar("C", bound=Strict)


class EvaluatorBase:
    """Defaults of every hook: react to events only, one state per device, no evidence."""

    needs_metric: ClassVar[bool] = False
    timed: ClassVar[bool] = False
    fixed_sub: ClassVar[bool] = True
    hold: float | None = None
    clear_hold: float | None = None
    clock_keys: tuple[str, ...] = ()

    def accepts(self, ev: Event) -> bool:
        raise NotImplementedError

    def sub(self, ev: Event) -> str:
        return ""

    def observe(self, st: State, ev: Event) -> Verdict | None:
        raise NotImplementedError

    def tick(self, st: State, now: float) -> Verdict | None:
        return None

    def deadline(self, st: State) -> float | None:
        return None

    def seed(self, st: State, now: float) -> None:
        """A configured device never heard from: called once before its first message."""

    def overlay(self, ev: Event) -> Overlay | None:
        """What to draw on a video alert's snapshot; None = no snapshot."""
        return None

    def keep(self, old: Evaluator, st: State) -> State:
        """The rule was edited (`old` judged it before): what of its state the new terms keep. Nothing, unless
        a kind learns something an edit of other terms should not throw away (a device's normal)."""
        return {}


class MetricEvaluator(EvaluatorBase):
    """Base of the rules on one sensor metric (level, window, rate, stuck): they see only readings that
    carry the metric, and judge its value."""

    needs_metric = True

    def __init__(self, spec: RuleSpec) -> None:
        assert spec.match.metric is not None  # RuleSpec checks it for every kind that needs a metric
        self.metric: str = spec.match.metric

    def accepts(self, ev: Event) -> bool:
        return ev.kind == "sensor" and self.metric in ev.metrics

    def observe(self, st: State, ev: Event) -> Verdict | None:
        v = ev.metrics.get(self.metric)
        return None if v is None else self.judge(st, v, ev.ts)

    def judge(self, st: State, v: float, ts: float) -> Verdict | None:
        raise NotImplementedError


class ClearsWhenQuiet(EvaluatorBase):
    """For event-like conditions (a fence event, motion): the episode resolves `clear_after` seconds after
    the last hit, recorded by the evaluator as `st["hit"]`; the engine's timer does it between messages."""

    timed = True
    clear_after: float
    clock_keys = ("hit",)

    def tick(self, st: State, now: float) -> Verdict | None:
        due = self.deadline(st)
        if due is None or now < due:
            return None
        del st["hit"]
        return Verdict(False, now)

    def deadline(self, st: State) -> float | None:
        return float(st["hit"]) + self.clear_after if "hit" in st else None
