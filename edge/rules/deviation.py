"""`deviation`: a reading far outside the device's own normal, learned per device (and per hour, if asked).

Each device learns its normal as an exponentially weighted mean and spread (standard deviation) of its
readings, with weight `2 / (span + 1)` on the newest (about the last `span` readings; Finch's incremental
form, the same recursion as river's `stats.EWMean` / `stats.EWVar`, which the tests check it against). With
`seasonal: hour_of_day` (or `hour_of_week`) there is one normal per local hour (of the week) in `tz`, so a
room full at 10:00 on weekdays is its own normal and not an anomaly.

The condition holds while a reading is more than `deviation` spreads away (`direction` above, below or both);
the spread is at least `min_spread` (a sensor that has read the same value for hours would otherwise call the
next wiggle an anomaly). Nothing is judged during `warmup` (time since the device's first reading) or before
its normal (that hour's, when seasonal) has `min_samples` readings.

Learning pauses while a reading is out, on either side (the episode, from the first reading out until one is
back within `clear_within` spreads): an anomaly does not become the new normal, even one the rule's `direction`
does not alert on. What the episode reads is learned apart,
and with `relearn_after` an episode that lasts that long is taken as the new normal (a sensor moved, a valve
reset): the baseline shifts to it and the episode resolves (`resolved_by: relearned`).

With `levels:` each warning level has its own number of spreads (`k`).

The state (one [count, mean, variance] per normal, the episode's) is JSON the agent persists: the learned
normal survives restarts and edits of the rule that do not change how it learns (`span`, `seasonal`, `tz`).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from edge.rules.base import Evaluator as EvaluatorProto
from edge.rules.base import MetricEvaluator, State, Verdict, WhenBase
from edge.rules.levels import LevelBase, Levelled
from gridwatch.core.config import TimeZone
from gridwatch.core.durations import Duration
from gridwatch.core.warning import RANK

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

KEYS = ("deviation",)


class Level(LevelBase):
    k: float = Field(gt=0, description="this level when a reading is this many spreads away")


class Config(WhenBase, Levelled):
    deviation: float = Field(gt=0, description="k: how many spreads from the normal is an anomaly")
    clear_within: float | None = Field(None, gt=0, description="back to normal within this many spreads "
                                                               "(hysteresis; default: deviation)")
    direction: Literal["both", "above", "below"] = "both"
    span: int = Field(60, ge=2, le=100_000, description="the normal weighs about the last `span` readings")
    seasonal: Literal["none", "hour_of_day", "hour_of_week"] = "none"
    tz: TimeZone = Field("Asia/Shanghai", description="local time of the seasonal normals")
    warmup: Duration = Field(3600.0, ge=0, description="learn this long from a device's first reading before "
                                                       "judging it")
    min_samples: int = Field(10, ge=2, description="readings a normal needs before it judges")
    min_spread: float = Field(0.0, ge=0, description="the spread is at least this (in the metric's unit)")
    relearn_after: Duration | None = Field(None, gt=0, description="an episode this long is the new normal")
    levels: list[Level] | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Config:
        if self.clear_within is not None and self.clear_within > self.deviation:
            raise ValueError(f"clear_within ({self.clear_within:g}) must not exceed deviation ({self.deviation:g})")
        for lv in self.levels or ():
            if lv.k < self.deviation:
                raise ValueError(f"levels: {lv.level} k ({lv.k:g}) is under the rule's deviation "
                                 f"({self.deviation:g}), which no level can be met below")
        ks = [lv.k for lv in self.levels or ()]
        if ks != sorted(ks):
            raise ValueError(f"levels: k must grow with the level, got {ks}")
        return self

    @property
    def threshold(self) -> float:
        """k, as `{threshold}` in a message template."""
        return self.deviation

    def learning(self) -> tuple[Any, ...]:
        """What the learned normals depend on: an edit that keeps these keeps them."""
        return (self.span, self.seasonal, self.tz)


class Evaluator(MetricEvaluator):
    clock_keys = ("t0", "out")

    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        super().__init__(spec)
        self.cfg = cfg
        self.alpha = 2.0 / (cfg.span + 1)
        self.tz = ZoneInfo(cfg.tz)
        self.clear_k = cfg.clear_within if cfg.clear_within is not None else cfg.deviation
        self.levels = sorted(((lv.level, lv.k) for lv in cfg.levels or ()), key=lambda t: -RANK[t[0]])
        self._bucket_of: dict[int, str] = {}  # local hour cache: epoch hour -> bucket

    def keep(self, old: EvaluatorProto, st: State) -> State:
        """An edit that learns the same way (span, seasonality, time zone) keeps the learned normals; the
        episode starts again under the new terms."""
        if isinstance(old, Evaluator) and old.cfg.learning() == self.cfg.learning() and "n" in st:
            return {"t0": st.get("t0"), "n": st["n"]}
        return {}

    def bucket(self, ts: float) -> str:
        if self.cfg.seasonal == "none":
            return "0"
        hour = int(ts // 3600)
        b = self._bucket_of.get(hour)
        if b is None:
            local = datetime.fromtimestamp(hour * 3600, self.tz)
            b = str(local.hour if self.cfg.seasonal == "hour_of_day" else local.weekday() * 24 + local.hour)
            if len(self._bucket_of) > 10_000:
                self._bucket_of.clear()
            self._bucket_of[hour] = b
        return b

    def judge(self, st: State, v: float, ts: float) -> Verdict | None:
        st.setdefault("t0", ts)
        normals: dict[str, list[float]] = st.setdefault("n", {})
        b = self.bucket(ts)
        normal = normals.get(b)
        ready = normal is not None and normal[0] >= self.cfg.min_samples and ts - float(st["t0"]) >= self.cfg.warmup
        if not ready or normal is None:
            normals[b] = ew(normal, v, self.alpha)
            return None
        _, mean, var = normal
        spread = max(math.sqrt(var), self.cfg.min_spread)
        z = (v - mean) / spread if spread > 0 else (0.0 if v == mean else math.copysign(math.inf, v - mean))
        away = z if self.cfg.direction == "above" else -z if self.cfg.direction == "below" else abs(z)
        note = {"now": f"{v:g}", "normal": f"{mean:.4g}", "spread": f"{spread:.3g}",
                "z": f"{z:.1f}" if math.isfinite(z) else "inf"}
        if "out" in st:  # in an episode: the normal stands still, the episode's readings are learned apart
            if abs(z) <= self.clear_k:
                del st["out"]
                st.pop("ep", None)
                normals[b] = ew(normal, v, self.alpha)
                return Verdict(False, ts, v, note=note)
            st["ep"] = ew(st.get("ep"), v, self.alpha)
            if self.cfg.relearn_after is not None and ts - float(st["out"]) >= self.cfg.relearn_after:
                self.relearn(st, b)
                return Verdict(False, ts, v, note=note, reason="relearned")
            return self.verdict(ts, v, away, note) if away > self.clear_k else Verdict(False, ts, v, note=note)
        if abs(z) > self.cfg.deviation:  # out either way pauses learning; only the rule's direction fires
            st["out"] = ts
            st["ep"] = ew(None, v, self.alpha)
            return self.verdict(ts, v, away, note) if away > self.cfg.deviation else Verdict(False, ts, v, note=note)
        normals[b] = ew(normal, v, self.alpha)
        return Verdict(False, ts, v, note=note)

    def verdict(self, ts: float, v: float, away: float, note: dict[str, str]) -> Verdict:
        """The condition holds `away` spreads out (in the rule's direction): at the highest level it meets."""
        for level, k in self.levels:
            if away > k:
                return Verdict(True, ts, v, note=note, level=level)
        if self.levels:  # out, but under the lowest level's k: the episode holds at the lowest level
            return Verdict(True, ts, v, note=note, level=self.levels[-1][0])
        return Verdict(True, ts, v, note=note)

    def relearn(self, st: State, b: str) -> None:
        """The episode is the new normal: every normal moves by the step its own hour saw, and this hour's
        spread becomes the episode's."""
        normals: dict[str, list[float]] = st["n"]
        ep = st.pop("ep")
        step = ep[1] - normals[b][1]
        for key, (n, mean, var) in normals.items():
            normals[key] = [n, mean + step, ep[2] if key == b else var]
        del st["out"]


def ew(normal: list[float] | None, v: float, alpha: float) -> list[float]:
    """[count, mean, variance] after one more reading: exponentially weighted, weight `alpha` on the newest
    (Finch 2009, "Incremental calculation of weighted mean and variance"; river's EWMean / EWVar)."""
    if normal is None:
        return [1, v, 0.0]
    n, mean, var = normal
    diff = v - mean
    incr = alpha * diff
    return [n + 1, mean + incr, (1 - alpha) * (var + diff * incr)]
