"""The rule engine: episodes, timers, suppression and correlation over every rule's evaluator.

Pure logic with an injected clock: `observe(event)` and `tick(now)` return `Alert` objects of the shared
model (`gridwatch.core.alert`, DESIGN §5). A video rule's firing alert gets its snapshot through the
`evidence` hook, called with the rule's evaluator as the alert is made.
State is one typed, JSON-able `Episode` per (rule, device, sub) (`edge.rules.episode`, which also makes
the alerts), so the agent can persist exactly what changed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any, cast

from edge.message import Event
from edge.rules import levels, suppression
from edge.rules.base import Evaluator, Verdict
from edge.rules.episode import FAULT_SUB, Episode, make_alert
from edge.rules.ruleset import CompiledRule, RuleSet
from gridwatch.core.alert import Alert, AlertState
from gridwatch.core.kinds import FeedKind

logger = logging.getLogger(__name__)

EvidenceHook = Callable[[Evaluator, Alert], None]
"""Called for every firing alert as it is made, with the evaluator of the rule that raised it."""
TraceHook = Callable[[CompiledRule, Event, Verdict | None, Episode], None]
"""Called after each evaluation of a reading with what the evaluator concluded (`rules backtest --trace`)."""


class Engine:
    def __init__(self, ruleset: RuleSet, edge_id: str = "edge", evidence: EvidenceHook | None = None) -> None:
        self.rules = ruleset
        self.edge_id = edge_id
        self.evidence = evidence
        self.states: dict[str, Episode] = {}
        self.dirty: dict[str, None] = {}  # states changed since last saved, oldest first (an ordered set)
        self.urgent: set[str] = set()  # states whose episode changed: persisted with the alerts they raise
        self.deleted: set[str] = set()
        self._heap: list[tuple[float, str]] = []
        self._armed: dict[str, float] = {}
        self._firing: Counter[tuple[str, str]] = Counter()
        self._suppressed: set[str] = set()
        self._releases: set[str] = set()
        self.evaluations: defaultdict[str, int] = defaultdict(int)
        self.alerts: Counter[tuple[str, str]] = Counter()
        self.ignored: Counter[str] = Counter()
        self.trace: TraceHook | None = None

    # ---- state in and out -------------------------------------------------------------------
    def load(self, states: dict[str, dict[str, Any]]) -> None:
        """Restore persisted states (after a restart); timers and indexes are derived again."""
        for key, raw in states.items():
            st = cast(Episode, raw)  # as `take_changes` gave them to the outbox
            st.setdefault("lts", None)
            st.setdefault("lseq", None)
            if st.get("r") in self.rules.rules:
                self.states[key] = st
                firing = +1 if st.get("ep") in ("firing", "clearing") else 0
                suppression.index(self._firing, self._suppressed, key, st, firing)
                self._arm(key)
            else:
                self.deleted.add(key)

    def take_changes(self, budget: int | None = None) -> tuple[dict[str, Episode], set[str]]:
        """States to persist: every episode change, plus up to `budget` other changed states (oldest
        first; all when None), so checkpointing windows is spread over many commits instead of one stall."""
        keys = list(self.urgent)
        for k in keys:
            self.dirty.pop(k, None)
        take = len(self.dirty) if budget is None else min(budget, len(self.dirty))
        if take:
            older = list(itertools.islice(self.dirty, take))
            for k in older:
                del self.dirty[k]
            keys += older
        changed = {k: self.states[k] for k in keys if k in self.states}
        deleted = self.deleted - changed.keys()
        self.urgent, self.deleted = set(), set()
        return changed, deleted

    def seed(self, grid: str, device: str, kind: FeedKind, now: float) -> None:
        """Make a configured device known to `stale_for` rules before its first message."""
        ev = Event(kind=kind, grid=grid, device=device, ts=now, received_at=now)
        for cr in self.rules.by_kind.get(kind, ()):
            if cr.spec.kind == "stale" and self.rules.selects(cr, grid, device):
                key = f"{cr.id}|{device}|"
                if key not in self.states:
                    st = self._state(key, cr, ev, "")
                    cr.evaluator.seed(st["d"], now)
                    self._arm(key)

    # ---- evaluation -------------------------------------------------------------------------
    def observe(self, ev: Event) -> list[Alert]:
        out: list[Alert] = []
        states, evaluations, dirty = self.states, self.evaluations, self.dirty
        ts, seq = ev.ts, ev.seq
        for cr, key, ask in self.rules.candidates(ev):
            evaluator = cr.evaluator
            if ask and not evaluator.accepts(ev):
                continue
            if key is None:
                key = f"{cr.id}|{ev.device}|{evaluator.sub(ev)}"
            st = states.get(key)
            if st is None:
                st = self._state(key, cr, ev, key.rsplit("|", 1)[1])
            lts = st["lts"]
            if lts is not None and (ts < lts or (ts == lts and seq is not None and seq == st["lseq"])):
                self.ignored["out_of_order" if ts < lts else "duplicate"] += 1
                continue
            st["lts"] = ts
            st["lseq"] = seq
            evaluations[cr.id] += 1
            if cr.plausible is not None and self._implausible(cr, ev, out):
                continue
            verdict = evaluator.observe(st["d"], ev)
            # most readings find an idle rule whose condition is not met: nothing to decide then
            ep = st["ep"]
            if verdict is not None and (verdict.cond or ep != "idle"):
                out += self._apply(cr, key, st, verdict)
                ep = st["ep"]
            if self.trace is not None:
                self.trace(cr, ev, verdict, st)
            dirty[key] = None
            if evaluator.timed or ep == "pending" or ep == "clearing":
                self._arm(key)
        return self._finish(out) if out or self._releases else out

    def tick(self, now: float) -> list[Alert]:
        """Fire hold timers, clear-after timers and time-driven conditions due at `now`."""
        out: list[Alert] = []
        while self._heap and self._heap[0][0] <= now:
            due, key = heapq.heappop(self._heap)
            if self._armed.get(key) != due:
                continue
            del self._armed[key]
            st = self.states.get(key)
            cr = self.rules.rules.get(st["r"]) if st else None
            if st is None or cr is None:
                continue
            out += self._timers(cr, key, st, now)
            self._arm(key)
        return self._finish(out)

    def next_deadline(self) -> float | None:
        while self._heap and self._armed.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def shift(self, step: float) -> int:
        """The agent's clock stepped by `step` seconds (NTP, an operator), and with it the stamps of devices
        that take their time from the same source (or send none): the stamps timers and order checks compare
        with move too, so silence, hold and clear timers count the time that really passed, and after a step
        back the next readings are not "out of order" for the length of the step. Returns how many states
        moved. (Windows of past values keep their stamps.)"""
        moved = 0
        for key, st in self.states.items():
            cr = self.rules.rules.get(st["r"])
            if cr is None:
                continue
            if st["lts"] is not None:
                st["lts"] += step
            if "since" in st:
                st["since"] += step
            if "cs" in st:
                st["cs"] += step
            d = st["d"]
            for k in cr.evaluator.clock_keys:
                if isinstance(d.get(k), int | float):
                    d[k] += step
                    moved += 1
                    self.dirty[key] = None
        self._rearm()
        return moved

    def silence_from(self, now: float) -> int:
        """Count every device's silence from `now` at the latest: the agent was away (a restart) or cut off
        from the broker, so what devices sent meanwhile may still be queued for it; it cannot call them
        silent for time it did not listen. Devices already marked silent stay so. Returns how many moved."""
        moved = 0
        for key, st in self.states.items():
            cr = self.rules.rules.get(st["r"])
            d = st["d"]
            if cr is None or "last" not in cr.evaluator.clock_keys or d.get("stale") or d.get("gw"):
                continue
            if isinstance(d.get("last"), int | float) and d["last"] < now:
                d["last"] = now
                moved += 1
                self.dirty[key] = None
        self._rearm()
        return moved

    def swap(self, ruleset: RuleSet, now: float) -> list[Alert]:
        """Take a new rule set; unchanged rules keep their state, removed ones resolve what they had firing."""
        old = self.rules
        out: list[Alert] = []
        for key, st in list(self.states.items()):
            new = ruleset.rules.get(st["r"])
            prev = old.rules.get(st["r"])
            if new is not None and prev is not None and new.spec.kind == prev.spec.kind:
                if new.version != prev.version:  # edited: keep the episode, restart windows under the new terms
                    st["d"] = new.evaluator.keep(prev.evaluator, st["d"])  # (what the kind learned may stay)
                    self.dirty[key] = None
                continue
            if prev is not None and st.get("ep") in ("firing", "clearing"):
                out += self._resolve(prev, key, st, now, reason="rule_removed" if new is None else "rule_changed")
            del self.states[key]
            self.deleted.add(key)
        self.rules = ruleset
        self._rearm()
        return out

    def forget(self, devices: set[str], now: float) -> list[Alert]:
        """Devices taken out of the registry: their state goes (no silence alarm for a device that is gone),
        and what they had firing resolves."""
        out: list[Alert] = []
        for key, st in list(self.states.items()):
            if st["dev"] not in devices:
                continue
            cr = self.rules.rules.get(st["r"])
            if cr is not None and st.get("ep") in ("firing", "clearing"):
                out += self._resolve(cr, key, st, now, reason="device_removed")
            del self.states[key]
            self.deleted.add(key)
        if out or devices:
            self._rearm()
        return out

    # ---- episode machine --------------------------------------------------------------------
    def _state(self, key: str, cr: CompiledRule, ev: Event, sub: str) -> Episode:
        kind = (ev.device_kind or ev.kind) if ev.kind == "status" else ev.kind
        st: Episode = {"r": cr.id, "dev": ev.device, "grid": ev.grid, "sub": sub, "k": kind, "ep": "idle",
                              "d": {}, "lts": None, "lseq": None}
        self.states[key] = st
        self.dirty[key] = None
        return st

    def _apply(self, cr: CompiledRule, key: str, st: Episode, v: Verdict,
               hold: float | None = None, clear_hold: float | None = None) -> list[Alert]:
        before = st["ep"]
        out = self._episode(cr, key, st, v, hold, clear_hold)
        if st["ep"] != before:
            self.urgent.add(key)
        return out

    def _episode(self, cr: CompiledRule, key: str, st: Episode, v: Verdict,
                 hold: float | None, clear_hold: float | None) -> list[Alert]:
        hold = cr.hold if hold is None else hold
        clear_hold = cr.clear_hold if clear_hold is None else clear_hold
        ep = st["ep"]
        if v.value is not None:
            st["val"] = v.value
        if v.note is not None and ep in ("idle", "pending") and (v.cond or ep == "idle"):
            st["note"] = v.note  # frozen once the alert fires: the resolve says what the firing said
        if v.level is not None:
            st["lv"] = v.level
            if v.cond and ep in ("firing", "clearing") and levels.step(st, v.level, v.ts, hold, clear_hold):
                if ep == "clearing":
                    st["ep"] = "firing"
                    st.pop("cs", None)
                return self._warn(cr, key, st, v)
        if v.cond is True:
            if ep == "idle":
                if cr.spec.schedule is not None and not cr.spec.schedule.active_at(v.ts):
                    self.ignored["outside_schedule"] += 1
                    return []
                st["since"] = v.start if v.start is not None else v.ts
                st["ep"] = "pending"
                if v.ts >= st["since"] + hold:
                    return self._fire(cr, key, st, v.ts)
            elif ep == "pending" and v.ts >= st["since"] + hold:
                return self._fire(cr, key, st, v.ts)
            elif ep == "clearing":
                st["ep"] = "firing"
                st.pop("cs", None)
                st.pop("why", None)
        elif v.cond is False:
            if ep == "pending":
                st["ep"] = "idle"
            elif ep == "firing":
                if clear_hold <= 0:
                    return self._resolve(cr, key, st, v.ts, reason=v.reason)
                st["ep"], st["cs"] = "clearing", v.ts
                if v.reason:
                    st["why"] = v.reason
            elif ep == "clearing" and v.ts >= st["cs"] + clear_hold:
                return self._resolve(cr, key, st, v.ts, reason=v.reason or st.get("why"))
        return []

    def _timers(self, cr: CompiledRule, key: str, st: Episode, now: float) -> list[Alert]:
        out: list[Alert] = []
        if st["ep"] == "pending" and now >= st["since"] + cr.hold:
            out += self._fire(cr, key, st, now)
        elif st["ep"] == "clearing" and now >= st["cs"] + cr.clear_hold:
            out += self._resolve(cr, key, st, now, reason=st.get("why"))
        if st["sub"] == FAULT_SUB:
            return out
        verdict = cr.evaluator.tick(st["d"], now)
        if verdict is not None:
            out += self._apply(cr, key, st, verdict)
        self.dirty[key] = None
        return out

    def _deadline(self, key: str) -> float | None:
        st = self.states.get(key)
        cr = self.rules.rules.get(st["r"]) if st else None
        if st is None or cr is None:
            return None
        times = []
        if st["ep"] == "pending":
            times.append(st["since"] + cr.hold)
        elif st["ep"] == "clearing":
            times.append(st["cs"] + cr.clear_hold)
        if st["sub"] != FAULT_SUB:
            d = cr.evaluator.deadline(st["d"])
            if d is not None:
                times.append(d)
        return min(times) if times else None

    def _rearm(self) -> None:
        """Every timer again, from the states as they are now."""
        self._heap, self._armed = [], {}
        for key in self.states:
            self._arm(key)

    def _arm(self, key: str) -> None:
        due = self._deadline(key)
        if due is None:
            return
        armed = self._armed.get(key)
        if armed is None or due < armed:
            self._armed[key] = due
            heapq.heappush(self._heap, (due, key))

    # ---- alerts -----------------------------------------------------------------------------
    def _fire(self, cr: CompiledRule, key: str, st: Episode, ts: float) -> list[Alert]:
        st["ep"], st["start"], st["fired"] = "firing", st["since"], ts
        if cr.severities and "lv" in st:
            st["lvl"], st["wseq"] = st["lv"], 0
            st.pop("lvs", None)
        self.urgent.add(key)
        suppression.index(self._firing, self._suppressed, key, st, +1)
        if suppression.blocks(self._firing, cr, st):
            st["sup"] = True
            self._suppressed.add(key)
            self.ignored["suppressed"] += 1
            return []
        st["sup"] = False
        return [self._alert(cr, st, "firing", ts)]

    def _warn(self, cr: CompiledRule, key: str, st: Episode, v: Verdict) -> list[Alert]:
        """The firing episode's warning level changed: one `warning` alert with the next sequence number (none
        while suppressed: the alert that is let through later carries the level of its time)."""
        st["wseq"] = st.get("wseq", 0) + 1
        if v.note is not None:
            st["note"] = v.note  # the new level's figures (a nearer time to the line)
        self.urgent.add(key)
        if st.get("sup"):
            return []
        return [self._alert(cr, st, "warning", v.ts)]

    def _resolve(self, cr: CompiledRule, key: str, st: Episode, ts: float,
                 reason: str | None = None) -> list[Alert]:
        was_suppressed = st.get("sup", False)
        body = None if was_suppressed else self._alert(cr, st, "resolved", ts, resolved_by=reason)
        st["ep"] = "idle"
        st["sup"] = False
        st.pop("why", None)
        self.urgent.add(key)
        self._suppressed.discard(key)
        suppression.index(self._firing, self._suppressed, key, st, -1)
        # suppressed rules are released once the whole event or tick has been seen by every rule
        self._releases.update(self.rules.suppresses.get(cr.id, ()))
        return [body] if body is not None else []

    def _finish(self, out: list[Alert]) -> list[Alert]:
        while self._releases:
            out += self._release(self._releases.pop())
        return self._correlate(out)

    def _release(self, rule_id: str) -> list[Alert]:
        """A suppressor cleared: suppressed episodes still active fire now."""
        out = []
        cr = self.rules.rules.get(rule_id)
        for key in [k for k in self._suppressed if self.states[k]["r"] == rule_id]:
            st = self.states[key]
            if cr is not None and not suppression.blocks(self._firing, cr, st):
                self._suppressed.discard(key)
                st["sup"] = False
                self.dirty[key] = None
                self.urgent.add(key)
                out.append(self._alert(cr, st, "firing", st.get("lts") or st["fired"]))
        return out

    def _alert(self, cr: CompiledRule, st: Episode, state: AlertState, ts: float,
               resolved_by: str | None = None) -> Alert:
        alert = make_alert(cr, st, state, ts, self.edge_id, resolved_by)
        self.alerts[(cr.spec.id, state)] += 1
        if state == "firing" and self.evidence is not None:
            self.evidence(cr.evaluator, alert)
        return alert

    # ---- plausibility and correlation -------------------------------------------------------
    def _implausible(self, cr: CompiledRule, ev: Event, out: list[Alert]) -> bool:
        v = ev.metrics.get(cr.spec.match.metric or "")
        if v is None or cr.spec.plausible is None:
            return False
        lo, hi = cr.spec.plausible
        bad = not (lo <= v <= hi)
        key = f"{cr.id}|{ev.device}|{FAULT_SUB}"
        st = self.states.get(key)
        if st is None and not bad:
            return False
        st = st or self._state(key, cr, ev, FAULT_SUB)
        # device-fault episodes fire and clear at once, whatever the hold times of the rule they guard
        out += self._apply(cr, key, st, Verdict(bad, ev.ts, v), hold=0.0, clear_hold=0.0)
        self.dirty[key] = None
        return bad

    def _correlate(self, alerts: list[Alert]) -> list[Alert]:
        if not self.rules.correlators:
            return alerts
        out: list[Alert] = []
        queue = list(alerts)
        while queue:
            a = queue.pop(0)
            out.append(a)
            if a.labels.get("fault"):
                continue
            for cr, correlator in self.rules.correlators.get(a.rule_id, ()):
                scope = correlator.scope(a)
                key = f"{cr.id}|{scope}|"
                st = self.states.get(key)
                if st is None:
                    st = {"r": cr.id, "dev": scope, "grid": a.grid_id, "sub": "", "k": a.kind,
                          "ep": "idle", "d": {}, "lts": None, "lseq": None}
                    self.states[key] = st
                verdict = correlator.on_alert(st["d"], a.rule_id, a.state == "firing", a.observed_at.timestamp())
                if verdict is not None:
                    if verdict.cond and st["ep"] == "idle":
                        st["adev"] = a.device_id
                    queue += self._apply(cr, key, st, verdict)
                self.dirty[key] = None
        return out

