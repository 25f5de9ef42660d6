"""`stale_for`: a device that sends nothing for too long, or whose gateway announces `offline` (LWT).

A device whose status is watched by a gateway (`Event.watched_by`: a GB/T 28181 platform kept alive by its
keepalives, a channel by its catalog Status) is not timed: it is online until the watcher says `offline`, or
the watcher's own `offline` speaks for it (issue 41: a healthy platform raises no offline case however quiet
its channels are).

Silence is measured on the agent's clock at both ends (when messages were received, and now), so a device
whose clock is off cannot look silent, and a step of the agent's own clock is taken out (`clock_keys`:
the engine moves `last` by the step) instead of making every device silent at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from edge.message import Event
from edge.rules.base import EvaluatorBase, State, Verdict, WhenBase
from gridwatch.core.durations import Duration

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

KEYS = ("stale_for",)


class Config(WhenBase):
    stale_for: Duration = Field(gt=0, description="silence longer than this raises the alert")


class Evaluator(EvaluatorBase):
    timed = True
    clock_keys = ("last",)

    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        self.limit = cfg.stale_for
        self.kind: str | None = spec.match.kind
        self.metric: str | None = spec.match.metric

    def accepts(self, ev: Event) -> bool:
        if ev.kind == "status":
            return self.kind is None or ev.device_kind == self.kind
        if self.kind is not None and ev.kind != self.kind:
            return False
        return self.metric is None or self.metric in ev.metrics

    def observe(self, st: State, ev: Event) -> Verdict | None:
        if ev.members is not None:  # a gateway: one alert for all its devices, no silence timer of its own
            st["gw"] = True
            if ev.event == "offline":
                note = {"gateway": ev.device, "devices": str(len(ev.members)),
                        "device_ids": ",".join(ev.members[:50]) + (",..." if len(ev.members) > 50 else "")}
                return Verdict(True, ev.ts, None, note=note, start=ev.ts)
            return Verdict(False, ev.ts)
        if ev.kind == "status" and ev.event == "offline":
            st["stale"] = True
            if ev.gateway is not None:  # its gateway's alert speaks for it; no alert of its own
                st["via"] = ev.gateway
                return None
            return Verdict(True, ev.ts, None, start=ev.ts)
        if ev.kind == "status" and ev.gateway is None:  # its own status (not one its gateway's spoke for)
            if ev.watched_by is not None:
                st["watched"] = True
            else:
                st.pop("watched", None)
        st["last"] = max(ev.received_at, st.get("last", 0.0))
        st["stale"] = False
        st.pop("via", None)
        return Verdict(False, ev.ts)

    def seed(self, st: State, now: float) -> None:
        """A configured device never heard from counts from agent start."""
        st.setdefault("last", now)

    def tick(self, st: State, now: float) -> Verdict | None:
        due = self.deadline(st)
        if due is None or now < due:
            return None
        st["stale"] = True
        return Verdict(True, now, None, start=due)

    def deadline(self, st: State) -> float | None:
        if st.get("stale") or st.get("gw") or st.get("watched") or "last" not in st:
            return None
        return float(st["last"]) + self.limit
