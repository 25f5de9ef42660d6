"""Alerts in: each (alert_id, state) taken once; a firing alert opens a case or merges into the open case
with the same grid + device + category; a `warning` alert (an early-warning rule's level changed) raises its
case's 预警 level and severity, or records a fall; resolved alerts mark the case cleared once every alert merged
into it has resolved. One transaction per batch, one query per kind of lookup; a batch that races another hub
writer for a new case is redone alert by alert.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridwatch.core.alert import Alert, AlertResult, AlertStatus
from gridwatch.core.names import SEVERITY_RANK
from gridwatch.core.warning import RANK as WARNING_RANK
from hub.fleet import looks, maintenance, registry
from hub.policy.lifecycle import TimelineAction
from hub.policy.sla import Policy
from hub.store.cases import Store, bulk_insert, new_case_id
from hub.store.models import AlertRow, Case, CasePart, Evidence, HeldAlert, Look, Maintenance, NewCase

MAX_EVIDENCE_BYTES = 512 * 1024


def dedup_key(a: Alert) -> str:
    return f"{a.grid_id}|{a.device_id}|{a.category}"


def ingest(store: Store, alerts: Sequence[Alert], *, actor: str) -> list[AlertResult]:
    """One result per alert, in order: created / merged / updated / duplicate / held."""
    try:
        with store.transaction() as s:
            return Batch(store, s, actor).run(alerts)
    except IntegrityError:  # a concurrent writer opened one of these cases first: redo alert by alert
        out = []
        for alert in alerts:
            for attempt in range(3):
                try:
                    with store.transaction() as s:
                        out += Batch(store, s, actor).run([alert])
                    break
                except IntegrityError:
                    if attempt == 2:
                        raise
        return out


@dataclass
class Batch:
    """One batch inside one transaction: what is already known is looked up once, then each alert is
    applied in order, and the rows are written together at the end."""

    store: Store
    s: Session
    actor: str
    now: datetime = field(init=False)
    known: dict[tuple[str, str], str] = field(default_factory=dict)  # (alert id, state) -> case id
    by_key: dict[str, Case | NewCase] = field(default_factory=dict)  # open cases by dedup key
    by_id: dict[str, Case | NewCase] = field(default_factory=dict)
    firing: dict[str, set[str]] = field(default_factory=dict)  # case id -> its alerts still firing
    fresh: list[NewCase] = field(default_factory=list)  # new cases, inserted before the rows that refer to them
    parts: list[dict[str, Any]] = field(default_factory=list)  # 协办 parts of the new cases
    rows: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[tuple[int, str, str, str]] = field(default_factory=list)  # row index, case, alert, base64
    released: dict[str, dict[str, Any]] = field(default_factory=dict)  # alert id -> the window that held it
    windows: list[Maintenance] = field(default_factory=list)  # maintenance windows that may be in force
    held: dict[str, HeldAlert] = field(default_factory=dict)  # alerts of this batch held earlier, unreleased
    places: dict[str, dict[str, Any]] = field(default_factory=dict)  # the registry's places of new cases
    recent: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # key -> case closed lately (重复件)
    links: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # device -> its camera (视频复核)
    looks: list[dict[str, Any]] = field(default_factory=list)  # looks the new cases ask of those cameras

    def __post_init__(self) -> None:
        self.now = self.store.now()

    def run(self, alerts: Sequence[Alert]) -> list[AlertResult]:
        self._look_up(alerts)
        results = [self._apply(a) for a in alerts]
        self._write()
        return results

    def _look_up(self, alerts: Sequence[Alert]) -> None:
        s = self.s
        self.known = self.store.known_alerts(s, {a.alert_id for a in alerts})
        self.by_key = dict(self.store.open_cases_by_key(s, {dedup_key(a) for a in alerts}))
        self.by_id = {c.id: c for c in self.by_key.values()}
        resolving = [a for a in alerts if a.state != "firing"]  # resolves and level changes: their firing's case
        wanted = {self.known[(a.alert_id, "firing")] for a in resolving if (a.alert_id, "firing") in self.known}
        self.by_id |= self.store.cases_by_id(s, wanted - self.by_id.keys())
        clearing = {self._case_of_resolved(a) for a in resolving}
        self.firing = self.store.firing_alerts(s, {c.id for c in clearing if c is not None})
        if not self.released:  # a release opens its cases whatever windows are in force
            self.windows = self.store.windows.get(s, self.now)
            # a resolve may belong to a held alert, and while windows are in force a resend may be held already
            ids = {a.alert_id for a in alerts if a.key not in self.known and (a.state != "firing" or self.windows)}
            if ids:
                q = select(HeldAlert).where(HeldAlert.alert_id.in_(ids), HeldAlert.released_at.is_(None))
                self.held = {h.alert_id: h for h in s.scalars(q.with_for_update())}
        opening = {a.device_id for a in alerts if a.place is None and dedup_key(a) not in self.by_key}
        self.places = registry.places(s, opening)
        new_keys = {dedup_key(a) for a in alerts if a.state == "firing" and dedup_key(a) not in self.by_key}
        self.links = looks.links(s, {a.device_id for a in alerts if dedup_key(a) in new_keys})
        window = max(p.repeat_within for p in self.store.sla.policies)
        self.recent = self.store.recent_closed(s, new_keys, self.now - timedelta(seconds=window)) if window else {}

    def _case_of_resolved(self, a: Alert) -> Case | NewCase | None:
        """The case a resolved (or level-change) alert belongs to: its firing alert's, else the open case of its
        key."""
        return self.by_id.get(self.known.get((a.alert_id, "firing"), "")) or self.by_key.get(dedup_key(a))

    def _apply(self, alert: Alert) -> AlertResult:
        if alert.key in self.known:
            return result(alert, "duplicate", self.known[alert.key])
        case = self._case_of_resolved(alert) if alert.state != "firing" else self.by_key.get(dedup_key(alert))
        status: AlertStatus
        if case is None and (held := self._hold(alert)) is not None:
            return AlertResult(alert_id=alert.alert_id, state=alert.state, status="held",
                               error=f"held by maintenance window {held}")
        if case is None:
            case, status = self._open(alert), "created"
        elif alert.state == "firing":
            self._merge(case, alert)
            status = "merged"
        else:
            if alert.state == "warning":
                self._warning(case, alert)
            status = "updated"
        self._track_clearing(case, alert)
        body = alert.model_dump(mode="json")
        snapshot = alert.evidence.snapshot_jpeg_b64
        if snapshot:  # stored once the case rows exist
            body["evidence"]["snapshot_jpeg_b64"] = None
            self.snapshots.append((len(self.rows), case.id, alert.alert_id, snapshot))
        self.known[alert.key] = case.id
        self.rows.append({"alert_id": alert.alert_id, "state": alert.key[1], "case_id": case.id,
                          "observed_at": alert.observed_at, "received_at": self.now, "body": body})
        return result(alert, status, case.id)

    def _hold(self, alert: Alert) -> int | None:
        """The window holding this alert (recorded, no case), or None. A resolve of a held firing alert is
        kept with it, so the release knows the episode ended."""
        h = self.held.get(alert.alert_id)
        if h is not None:
            if alert.state == "resolved" and h.resolved is None:
                h.resolved = alert.model_dump(mode="json")
            elif alert.state == "warning" and h.resolved is None:  # the release opens at the level of its time
                h.body = {**h.body, "severity": alert.severity, "warning": alert.warning, "message": alert.message}
            return h.window_id
        if alert.state != "firing" or not self.windows:
            return None
        w = maintenance.holding(self.windows, alert, self.now, self.store.tz)
        if w is None:
            return None
        h = HeldAlert(alert_id=alert.alert_id, window_id=w.id, body=alert.model_dump(mode="json"),
                      received_at=self.now, resolved=None, released_at=None, outcome=None)
        self.s.add(h)
        self.held[alert.alert_id] = h
        return w.id

    def _open(self, alert: Alert) -> NewCase:
        now = self.now
        policy = self.store.sla.policy_for(alert.category, alert.severity, manual=False)
        placed = self.store.routing.place(self.store.org, category=alert.category, severity=alert.severity,
                                          grid=alert.grid_id, manual=False)
        owner, note = (placed.owner, None) if placed is not None else self._owner(alert.grid_id, policy)
        case = NewCase(
            id=new_case_id(now), dedup_key=dedup_key(alert), status="reported" if placed and placed.reported
            else "open", held_from=None, manual=False,
            category=alert.category, severity=alert.severity, grid=alert.grid_id, device=alert.device_id,
            owner=owner, title=alert.message, policy=policy.model_dump(mode="json"), opened_at=now,
            accepted_at=None, resolved_at=None, closed_at=None, stage_started_at=now,
            first_seen=alert.observed_at, last_seen=alert.observed_at, first_received=now, alert_count=1,
            cleared_at=None, escalations=0, backup_notified=False, last_reminder=None, next_due=None,
            light_announced=None, version=1, warning=alert.warning,
            place=alert.place.model_dump() if alert.place is not None else self.places.get(alert.device_id))
        if placed is not None and placed.assist:
            case.assist = list(placed.assist)
            self.parts += [{"case_id": case.id, "unit": u, "assigned_at": now, "signed_at": None, "signed_by": None,
                            "reported_at": None, "reported_by": None, "note": ""} for u in placed.assist]
        self.store.schedule(None, case, now, pauses=[], policy=policy)
        self.fresh.append(case)
        self.by_key[case.dedup_key], self.by_id[case.id] = case, case
        opened: dict[str, Any] = {"alert_id": alert.alert_id, "policy": policy.id, "owner": owner}
        if alert.warning is not None:
            opened["warning"] = alert.warning
        if placed is not None:
            opened |= placed.logged()
        if note:
            opened["note"] = note
        if alert.alert_id in self.released:
            opened["maintenance"] = self.released[alert.alert_id]
        earlier = self.recent.get(case.dedup_key)
        if earlier is not None and (now - earlier[1]).total_seconds() <= policy.repeat_within:
            case.repeat_of = opened["repeat_of"] = earlier[0]
        self._entry(case, "opened", opened)
        if (link := self.links.get(alert.device_id)) is not None:
            row, detail = looks.asked(case.id, link[0], link[1], alert.device_id, "linkage", self.now)
            self.looks.append(row)
            self._entry(case, "look_asked", detail)
        if case.repeat_of is not None:
            self._entry(case, "repeat", {"repeat_of": case.repeat_of, "closed_at": earlier[1].isoformat()
                                         if earlier is not None else None})
        return case

    def _owner(self, grid: str, policy: Policy) -> tuple[str, str | None]:
        org = self.store.org
        if grid in org.units:
            return org.owner_at(grid, policy.start_level), None
        top = next(u for u in org.units.values() if u.level == "district")
        return top.id, f"grid {grid!r} is not in the org tree; opened at {top.id}"

    def _merge(self, case: Case | NewCase, alert: Alert) -> None:
        observed = alert.observed_at
        case.alert_count += 1
        case.first_seen = min(case.first_seen, observed)
        case.last_seen = max(case.last_seen, observed)
        self._entry(case, "merged", {"alert_id": alert.alert_id, "observed_at": observed.isoformat()})
        if alert.warning is not None and WARNING_RANK[alert.warning] > WARNING_RANK.get(case.warning or "", 0):
            self._entry(case, "warning_raised", {"from": case.warning, "to": alert.warning, "alert_id": alert.alert_id})
            case.warning = alert.warning
        self._raise_severity(case, alert)
        if case.cleared_at is not None:
            case.cleared_at = None
            self._entry(case, "condition_returned", {"alert_id": alert.alert_id})
        if isinstance(case, Case) and case.status in ("resolved", "verified"):
            self._reopen(case, alert)

    def _raise_severity(self, case: Case | NewCase, alert: Alert) -> None:
        if SEVERITY_RANK[alert.severity] > SEVERITY_RANK.get(case.severity, 0):  # a pre-alarm turned alarm
            self._entry(case, "severity_raised",
                        {"from": case.severity, "to": alert.severity, "alert_id": alert.alert_id})
            case.severity = alert.severity

    def _warning(self, case: Case | NewCase, alert: Alert) -> None:
        """An early-warning alert's level changed within its episode: a climb raises the case's level, severity
        and title (what the wall shows); a fall is recorded, and lowers them only when the case's policy says
        `warning_falls: follow` (people go on with what they were told)."""
        new, old = alert.warning, case.warning
        if new is None or new == old:
            return
        detail: dict[str, Any] = {"from": old, "to": new, "alert_id": alert.alert_id, "seq": alert.warning_seq}
        if old is None or WARNING_RANK[new] > WARNING_RANK[old]:
            self._entry(case, "warning_raised", detail)
            case.warning, case.title = new, alert.message
            self._raise_severity(case, alert)
            return
        follow = (case.policy or {}).get("warning_falls") == "follow"
        self._entry(case, "warning_lowered", detail | {"applied": follow})
        if follow:
            case.warning, case.title = new, alert.message
            if SEVERITY_RANK[alert.severity] < SEVERITY_RANK.get(case.severity, 0):
                case.severity = alert.severity

    def _reopen(self, case: Case, alert: Alert) -> None:
        """The condition came back after the result was reported (办结: waiting for 核查 or 回访) and before the
        case was closed: the result did not hold, so the case goes back to handling with a fresh resolve
        clock."""
        case.status = "accepted"
        case.back_to_handling(self.now)
        case.reopened += 1
        case.version += 1
        self._entry(case, "reopened", {"alert_id": alert.alert_id, "count": case.reopened, "stage": "resolve"})
        self.store.schedule(self.s, case, self.now)

    def _track_clearing(self, case: Case | NewCase, alert: Alert) -> None:
        """Cleared once every alert merged into the case has resolved, not at the first of them."""
        still = self.firing.setdefault(case.id, set())
        if alert.state != "resolved":
            still.add(alert.alert_id)
            return
        still.discard(alert.alert_id)
        if not still and case.cleared_at is None and case.status != "closed":
            case.cleared_at = alert.observed_at
            self._entry(case, "condition_cleared", {"alert_id": alert.alert_id})

    def _entry(self, case: Case | NewCase, action: TimelineAction, detail: dict[str, Any]) -> None:
        self.log.append({"case_id": case.id, "at": self.now, "actor": self.actor, "action": action,
                         "detail": detail})

    def _write(self) -> None:
        s = self.s
        s.flush()  # merged cases first
        bulk_insert(s, Case, [c.row() for c in self.fresh])
        bulk_insert(s, CasePart, self.parts)
        bulk_insert(s, Look, self.looks)
        for i, case_id, alert_id, b64 in self.snapshots:
            self.rows[i]["body"]["evidence"]["stored"] = self._evidence(case_id, alert_id, b64)
        bulk_insert(s, AlertRow, self.rows)
        self.store.append_log(s, self.log)

    def _evidence(self, case_id: str, alert_id: str, b64: str) -> int | str:
        """Keep a JPEG snapshot (size-capped) as the case's next evidence item; say why when it is not kept."""
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            return "not base64"
        if len(data) > MAX_EVIDENCE_BYTES:
            return f"larger than {MAX_EVIDENCE_BYTES} bytes"
        if not data.startswith(b"\xff\xd8"):
            return "not a JPEG"
        n = self.store.next_evidence_number(self.s, case_id)
        self.s.add(Evidence(case_id=case_id, n=n, alert_id=alert_id, content_type="image/jpeg", data=data))
        return n


def result(alert: Alert, status: AlertStatus, case_id: str) -> AlertResult:
    return AlertResult(alert_id=alert.alert_id, state=alert.state, status=status, case_id=case_id)


def release_due(store: Store, now: datetime | None = None) -> int:
    """Release the alerts held by windows no longer in force: a resolved episode is closed as `cleared`, a
    condition that still holds goes through intake now and opens its case (noting the window). One
    transaction: a failure leaves every alert held, to be tried again."""
    now = now or store.now()
    with store.transaction() as s:
        due = [(h, w) for h, w in maintenance.pending(s) if not maintenance.active(w, now, store.tz)]
        if not due:
            return 0
        opening = []
        batch = Batch(store, s, "maintenance")
        for h, w in due:
            h.released_at = now
            if h.resolved is not None:
                h.outcome = "cleared"
                continue
            h.outcome = "opened"
            opening.append(Alert.model_validate(h.body))
            batch.released[h.alert_id] = {"window": w.id, "reason": w.reason, "scope": w.scope, "target": w.target,
                                          "held_since": h.received_at.isoformat()}
        if opening:
            batch.run(opening)
        return len(due)
