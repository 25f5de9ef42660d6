"""`forecast_above` / `forecast_below`: warn before a line is crossed, from where the metric is going.

The trend of the last `window` of readings is fitted (`method: linear`, least squares, or `holt`, Holt's
linear trend method for irregular sampling), and the condition holds while the fit says the line will be
reached within `horizon`. The alert's value is the expected time to the line in seconds; its labels carry
`eta_s`, `line`, `now` and `per_min` so the message says it in words ("预计约 25 分钟后达到 2.5").

What keeps noise and gaps from making it flap: fewer than `min_samples` readings in the window, or the fit
explaining less than `min_r2` of the window's variance, is no trend (the condition is off); a gap longer than
`max_gap` starts the window again (no verdict until it has `min_samples`); it clears only when the time to
the line is beyond `clear_horizon` (hysteresis), on top of the rule's `for` and `clear_for`. Once the reading
itself is past the line the forecast has come true: the episode resolves with `resolved_by: crossed` and the
level rule on the same line (`above:`) has taken over.

With `levels:` each warning level has its own horizon (and optionally its own line): blue 60 min, orange 20
min, red 5 min, say; the episode climbs as the line nears.

The maths is a few sums per reading, in plain Python on a JSON-able state (the agent persists it with the
outbox and it survives restarts): a numerical library would cost more to call than the arithmetic, and its
objects could not be saved as they are. The tests check the fit against numpy's least squares and the Holt
recursion against river's `HoltWinters` on the same series.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from edge.rules.base import Evaluator as EvaluatorProto
from edge.rules.base import MetricEvaluator, State, Verdict, WhenBase
from edge.rules.levels import LevelBase, Levelled
from gridwatch.core.durations import Duration
from gridwatch.core.warning import RANK

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

KEYS = ("forecast_above", "forecast_below")
SAMPLES = 120
"""At most this many samples per window (one every window/120 at most): bounded state at any reading rate."""


class Level(LevelBase):
    horizon: Duration | None = Field(None, gt=0, description="this level when the line is this near in time")
    line: float | None = Field(None, description="this level's own line (default: the rule's)")


class Config(WhenBase, Levelled):
    forecast_above: float | None = Field(None, description="the line a rising metric is about to cross")
    forecast_below: float | None = Field(None, description="the line a falling metric is about to cross")
    horizon: Duration | None = Field(None, gt=0, description="warn when the line is expected within this")
    clear_horizon: Duration | None = Field(None, gt=0, description="clear only when the line is further off "
                                                                   "than this (default: horizon)")
    window: Duration = Field(900.0, gt=0, description="fit the trend over this much of the latest readings")
    method: Literal["linear", "holt"] = "linear"
    alpha: float = Field(0.3, gt=0, le=1, description="holt: smoothing of the level")
    beta: float = Field(0.1, gt=0, le=1, description="holt: smoothing of the trend")
    min_samples: int = Field(6, ge=3, description="readings in the window before a trend is trusted")
    max_gap: Duration | None = Field(None, gt=0, description="a longer gap starts the window again "
                                                             "(default: window / 3)")
    min_r2: float = Field(0.5, ge=0, le=1, description="fit quality floor: R² of the linear fit over the window")
    levels: list[Level] | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Config:
        if (self.forecast_above is None) == (self.forecast_below is None):
            raise ValueError("expected exactly one of forecast_above, forecast_below")
        if self.levels is None:
            if self.horizon is None:
                raise ValueError("horizon: how far ahead to warn (e.g. 30m) is required")
        else:
            for lv in self.levels:
                if lv.horizon is None and self.horizon is None:
                    raise ValueError(f"levels: {lv.level} needs a horizon (or give the rule one)")
        if self.clear_horizon is not None and self.clear_horizon < self.widest:
            raise ValueError(f"clear_horizon ({self.clear_horizon:g}s) must not be under the horizon "
                             f"({self.widest:g}s)")
        return self

    @property
    def line(self) -> float:
        return self.forecast_above if self.forecast_above is not None else float(self.forecast_below or 0.0)

    @property
    def threshold(self) -> float:
        """The line, as `{threshold}` in a message template."""
        return self.line

    @property
    def widest(self) -> float:
        horizons = [lv.horizon or self.horizon or 0.0 for lv in self.levels or ()] + [self.horizon or 0.0]
        return max(horizons)


class Evaluator(MetricEvaluator):
    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        super().__init__(spec)
        self.cfg = cfg
        self.up = cfg.forecast_above is not None
        self.line = cfg.line
        self.gap = cfg.max_gap if cfg.max_gap is not None else cfg.window / 3
        self.every = cfg.window / SAMPLES
        self.clear_after = cfg.clear_horizon if cfg.clear_horizon is not None else cfg.widest
        # (level, line, horizon), highest level first
        self.levels = sorted(((lv.level, lv.line if lv.line is not None else self.line,
                               lv.horizon if lv.horizon is not None else float(cfg.horizon or 0.0))
                              for lv in cfg.levels or ()), key=lambda t: -RANK[t[0]])

    def keep(self, old: EvaluatorProto, st: State) -> State:
        """An edit of the line, horizon or levels keeps the window of readings (and Holt's state) when it is
        fitted the same way."""
        if isinstance(old, Evaluator) and (old.cfg.window, old.cfg.method, old.cfg.alpha, old.cfg.beta) == (
                self.cfg.window, self.cfg.method, self.cfg.alpha, self.cfg.beta):
            return {k: st[k] for k in ("w", "h") if k in st}
        return {}

    def judge(self, st: State, v: float, ts: float) -> Verdict | None:
        fit = self.learn(st, v, ts)
        if fit is None:
            return None
        level_now, slope, r2 = fit
        if (v >= self.line) if self.up else (v <= self.line):
            return Verdict(False, ts, 0.0, note=None, reason="crossed")
        eta = self.eta(level_now, slope, self.line)
        note = {"eta_s": f"{eta:.0f}" if math.isfinite(eta) else "inf", "line": f"{self.line:g}",
                "now": f"{v:g}", "per_min": f"{slope * 60:.4g}", "r2": f"{r2:.2f}"}
        value = round(eta, 1) if math.isfinite(eta) else None
        if r2 < self.cfg.min_r2:
            return Verdict(False, ts, value, note=note)
        if not self.levels:
            horizon = float(self.cfg.horizon or 0.0)
            if eta <= horizon:
                return Verdict(True, ts, value, note=note)
            return Verdict(False if eta > self.clear_after else None, ts, value, note=note)
        for level, line, horizon in self.levels:
            if self.eta(level_now, slope, line) <= horizon:
                return Verdict(True, ts, value, note=note, level=level)
        return Verdict(False if eta > self.clear_after else None, ts, value, note=note, level=self.levels[-1][0])

    def eta(self, level_now: float, slope: float, line: float) -> float:
        """Seconds until the fitted trend reaches `line` (0 when it is there, inf when it heads away)."""
        gap = (line - level_now) if self.up else (level_now - line)
        speed = slope if self.up else -slope
        if gap <= 0:
            return 0.0
        return gap / speed if speed > 0 else math.inf

    def learn(self, st: State, v: float, ts: float) -> tuple[float, float, float] | None:
        """Take the reading into the window (and Holt's level and trend); the fitted value now, the slope per
        second and the window's R², or None while the window has too few readings."""
        w: list[float] = st.setdefault("w", [])
        if w and (ts - w[-2] > self.gap or ts < w[-2]):  # a gap, or a clock stepped back: start again
            w.clear()
            st.pop("h", None)
            st.pop("fit", None)
        changed = not w or ts - w[-2] >= self.every
        if changed:
            w += (ts, v)
            self.holt(st, v, ts)
        horizon = ts - self.cfg.window
        drop = 0
        while len(w) - drop > 2 and w[drop] < horizon:
            drop += 2
        if drop:
            del w[:drop]
            changed = True
        if len(w) // 2 < self.cfg.min_samples:
            st.pop("fit", None)
            return None
        fit = st.get("fit")
        if changed or fit is None:  # the fit changes only with the window (readings between samples reuse it)
            st["fit"] = fit = [w[-2], *linear(w, w[-2])]
        at, fitted, slope, r2 = fit
        if self.cfg.method == "holt" and len(st.get("h", ())) == 3:
            level, trend, h_at = st["h"]
            return level + trend * (ts - h_at), trend, r2
        return fitted + slope * (ts - at), slope, r2

    def holt(self, st: State, v: float, ts: float) -> None:
        """Holt's linear trend method for readings at any spacing: level and trend per second, `h` = [level,
        trend, at]; started like river's `HoltWinters` (the mean of the first two readings, their slope)."""
        if self.cfg.method != "holt":
            return
        h = st.get("h")
        if h is None:
            st["h"] = [v, ts]
            return
        if len(h) == 2:
            v0, t0 = h
            if ts <= t0:
                return
            st["h"] = [(v0 + v) / 2, (v - v0) / (ts - t0), ts]
            return
        level, trend, at = h
        dt = ts - at
        if dt <= 0:
            return
        new = self.cfg.alpha * v + (1 - self.cfg.alpha) * (level + trend * dt)
        trend = self.cfg.beta * (new - level) / dt + (1 - self.cfg.beta) * trend
        st["h"] = [new, trend, ts]


def linear(w: list[float], at: float) -> tuple[float, float, float]:
    """Least squares v = a + b·t over the flat (t, v) list: the fitted value at `at`, the slope b and R². Times
    are taken relative to the first, so epoch seconds do not eat the float's precision."""
    t0 = w[0]
    ts, vs = w[0::2], w[1::2]
    n = len(vs)
    mt = sum(ts) / n - t0
    mv = sum(vs) / n
    stt = stv = svv = 0.0
    for t, v in zip(ts, vs, strict=True):
        dt, dv = t - t0 - mt, v - mv
        stt += dt * dt
        stv += dt * dv
        svv += dv * dv
    if stt <= 0:
        return mv, 0.0, 0.0
    b = stv / stt
    r2 = 1.0 if svv <= 0 else min(1.0, stv * stv / (stt * svv))
    return mv + b * (at - t0 - mt), b, r2
