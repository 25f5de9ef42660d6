"""The scheduler: on time, turn clocks into events — light changes, escalations, backup notices, reminders.

It never scans every case: each case keeps `next_due` (its next light change, or now when red), indexed,
and each round takes only the due ones, locked with SKIP LOCKED so several hub processes on one
PostgreSQL never handle the same case twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from hub.audit import trail as audit
from hub.cases.ingest import Batch, release_due
from hub.fleet import agents as fleet
from hub.policy.calendar_watch import notices as calendar_notices
from hub.policy.escalation import Action, CaseSituation, decide
from hub.policy.sla import Policy
from hub.store.cases import Store
from hub.store.models import Case

logger = logging.getLogger(__name__)
ACTOR = "scheduler"


class Scheduler:
    def __init__(self, store: Store, *, batch: int = 200, heartbeat_limit: float = 45.0,
                 audit_days: float | None = None) -> None:
        self.store = store
        self.audit_days = audit_days  # audit records older than this are pruned once a day (None: kept)
        self.batch = batch
        self.heartbeat_limit = heartbeat_limit
        self._housekept: datetime | None = None
        self._calendars_said: date | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.done: Counter[Action] = Counter()
        """Escalation decisions this process carried out and committed, by action (escalate, notify_backup,
        remind): with several replicas, each one's share (`gridwatch_hub_scheduler_actions_total`)."""

    def run_due(self, now: datetime | None = None) -> int:
        """Handle every case due at `now`; returns how many were handled."""
        now = now or self.store.now()
        handled = 0
        if self._housekept is None or abs((now - self._housekept).total_seconds()) >= 1.0:
            self._housekept = now
            self.housekeeping(now)
            if (today := self.store.today(now)) != self._calendars_said:
                self.say_calendars(today)
                if self.audit_days is not None and (gone := audit.prune(self.store, self.audit_days)):
                    logger.info("audit: %d records older than %g days pruned", gone, self.audit_days)
        while True:
            acted: Counter[Action] = Counter()
            with self.store.transaction() as s:
                due = self.store.due_cases(s, now, self.batch)
                for case in due:
                    if (action := self._handle(s, case, now)) is not None:
                        acted[action] += 1
                handled += len(due)
            self.done.update(acted)  # committed
            if len(due) < self.batch:
                return handled

    def housekeeping(self, now: datetime) -> None:
        """Once a second: release alerts held by maintenance windows that ended, and open one agent_offline
        case for each agent whose heartbeat is overdue."""
        release_due(self.store, now)
        with self.store.transaction() as s:
            silent = fleet.silent(s, now, self.heartbeat_limit)
            if not silent:
                return
            for a in silent:
                a.offline_since = now
                logger.warning("edge agent %s silent since %s: opening its agent_offline case", a.id,
                               a.last_seen.isoformat())
            alerts = [fleet.offline_alert(a, "firing", now, self.store.org) for a in silent]
            Batch(self.store, s, "watchdog").run(alerts)

    def say_calendars(self, today: date) -> None:
        """Log the calendars running out (`hub.policy.calendar_watch`): at start, then once a local day."""
        self._calendars_said = today
        for n in calendar_notices(self.store.calendars, self.store.sla, today):
            logger.log(logging.WARNING if n.level == "warning" else logging.INFO, "%s", n.detail)

    def _handle(self, s: Session, case: Case, now: datetime) -> Action | None:
        """The case's light, escalation, backup or reminder now; returns the escalation action taken."""
        pauses = self.store.pauses(s, case.id)
        found = self.store.clock_of(case, pauses, now)
        if found is None:
            case.next_due = None
            return None
        stage, reading = found
        if reading.light != case.light_announced:
            case.light_announced = reading.light
            self.store.log(s, case, now, ACTOR, "light", {"stage": stage, "light": reading.light,
                                                            "owner": case.owner})
        policy = Policy.model_validate(case.policy)
        # escalation, backup and reminders go by the owner's own clock (a fresh limit for each new owner);
        # the light and 已挂单 stay on the stage's clock, which an escalation does not restart
        level = self.store.clock_of(case, pauses, now, policy, level=True)
        assert level is not None
        situation = CaseSituation(case.owner, case.grid, stage, case.backup_notified, case.last_reminder)
        decision = decide(situation, level[1], self.store.org, now=now, remind_every_s=policy.remind_every)
        if decision is not None:
            self._apply(s, case, decision.action, decision.unit, decision.reason, now, stage)
            level = self.store.clock_of(case, pauses, now, policy, level=True)
            assert level is not None
        changes = [r.next_change for r in (reading, level[1]) if r.next_change is not None]
        if reading.paused:
            case.next_due = None
        elif changes:
            case.next_due = min(changes)
        else:  # red at the top with nothing to do now: come back for the next reminder
            last = case.last_reminder or now
            case.next_due = last + timedelta(seconds=policy.remind_every)
        return decision.action if decision is not None else None

    def _apply(self, s: Session, case: Case, action: str, unit: str, reason: str, now: datetime,
               stage: str) -> None:
        if action == "escalate":
            previous = case.owner
            case.owner, case.level_started_at = unit, now
            case.escalations += 1
            case.backup_notified, case.last_reminder = False, None
            self.store.log(s, case, now, ACTOR, "escalated", {"from": previous, "to": unit, "reason": reason,
                                                               "stage": stage})
        elif action == "notify_backup":
            case.backup_notified, case.level_started_at = True, now
            case.backup = unit  # the backup grid sees the case from now on and may sign for it
            self.store.log(s, case, now, ACTOR, "backup_notified", {"backup": unit, "reason": reason,
                                                                     "stage": stage})
        else:
            case.last_reminder = now
            self.store.log(s, case, now, ACTOR, "reminder", {"to": unit, "reason": reason})
        case.version += 1

    # ---- the background loop --------------------------------------------------------------------
    def start(self, interval: float = 0.2) -> None:
        def loop() -> None:
            failing_since: float | None = None
            said = 0.0
            while not self._stop.wait(interval):
                try:
                    self.run_due()
                except Exception as exc:
                    now = time.monotonic()
                    if failing_since is None:  # the first failure with its traceback, then a line a minute
                        failing_since = said = now
                        logger.exception("scheduler round failed; retrying every %.1fs", interval)
                    elif now - said >= 60.0:
                        said = now
                        logger.error("scheduler still failing after %.0fs: %s", now - failing_since,
                                     str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
                    continue
                if failing_since is not None:
                    logger.info("scheduler recovered after %.0fs", time.monotonic() - failing_since)
                    failing_since = None
        self._thread = threading.Thread(target=loop, name="gridwatch-hub-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
