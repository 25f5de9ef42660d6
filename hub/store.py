"""The case store: alerts in (idempotent, merged by dedup key), case transitions with an append-only
timeline, and the clock readings derived from stored stamps. Works on SQLite and PostgreSQL.

Pure decisions (lights, escalation) live in `hub.sla` / `hub.escalation`; this module only stores.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import JSON, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from edge.rules.base import Severity
from hub.calendar import Calendar
from hub.models import AlertRow, Case, Evidence, Pause, TimelineEntry
from hub.org import Org
from hub.sla import ClockReading, Policy, SlaFile, limit_seconds, stage_clock
from hub.sla import Pause as ClockPause

MAX_EVIDENCE_BYTES = 512 * 1024
SEVERITY_RANK = {"info": 0, "minor": 1, "major": 2, "critical": 3}
ACTIONS = ("accept", "resolve", "close", "hold", "resume", "transfer", "comment")


class Conflict(Exception):
    """An action the case's state does not allow (HTTP 409)."""


class NotFound(Exception):
    """No such case (HTTP 404)."""


class AlertIn(BaseModel):
    """An alert body as the edge sends it (DESIGN §5); unknown extra fields are kept in the stored body."""

    model_config = ConfigDict(extra="allow")
    alert_id: str = Field(min_length=1, max_length=64)
    state: str = Field(pattern="^(firing|resolved)$")
    rule_id: str
    device_id: str = Field(min_length=1, max_length=64)
    grid_id: str = Field(min_length=1, max_length=64)
    category: str = Field(min_length=1, max_length=64)
    severity: Severity
    observed_at: datetime
    started_at: datetime | None = None
    message: str = ""


def bulk_insert(s: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows: COPY on PostgreSQL (psycopg's executemany sends one statement per row and was the
    bottleneck of alert intake), executemany elsewhere."""
    if not rows:
        return
    conn = s.connection()
    if conn.dialect.name != "postgresql":
        s.execute(insert(model), rows)
        return
    table = model.__table__
    cols = [c.name for c in table.columns if c.name in rows[0]]
    json_cols = {c.name for c in table.columns if isinstance(c.type, JSON)}
    import psycopg

    raw = conn.connection.driver_connection
    sql = f"COPY {table.name} ({', '.join(cols)}) FROM STDIN"
    try:
        with raw.cursor().copy(sql) as copy:
            for r in rows:
                copy.write_row([json.dumps(r[c]) if c in json_cols and r[c] is not None else r[c] for c in cols])
    except psycopg.errors.IntegrityError as exc:  # as SQLAlchemy would raise it: callers retry on it
        raise IntegrityError(sql, None, exc) from exc


def new_case_id(now: datetime) -> str:
    """Time-ordered: 12 hex digits of milliseconds, then 8 random ones."""
    return f"{int(now.timestamp() * 1000):012x}{secrets.token_hex(4)}"


def utc(dt: datetime) -> datetime:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass
class Store:
    engine: Engine
    sla: SlaFile
    org: Org
    calendars: dict[str, Calendar]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def now(self) -> datetime:
        """The store's stamps: UTC, millisecond precision."""
        t = self.clock().astimezone(UTC)
        return t.replace(microsecond=t.microsecond // 1000 * 1000)

    # ---- alerts in ----------------------------------------------------------------------------
    def ingest(self, bodies: list[dict[str, Any]], *, actor: str) -> list[dict[str, Any]]:
        """One result per alert: created / merged / updated / duplicate / rejected (with the error)."""
        parsed: list[AlertIn | dict[str, Any]] = []
        for body in bodies:
            try:
                parsed.append(AlertIn.model_validate(body))
            except ValidationError as exc:
                err = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                parsed.append({"alert_id": body.get("alert_id"), "state": body.get("state"),
                               "status": "rejected", "error": err})
        items = [(p, b) for p, b in zip(parsed, bodies, strict=True) if not isinstance(p, dict)]
        done: dict[int, dict[str, Any]] = {}
        try:  # the whole batch in one transaction, with one query per kind of lookup
            with Session(self.engine) as s, s.begin():
                got = self._ingest_batch(s, items, actor)
            done = {id(p): r for (p, _), r in zip(items, got, strict=True)}
        except IntegrityError:  # a concurrent writer opened one of these cases first: redo alert by alert
            for item in items:
                for attempt in range(3):
                    try:
                        with Session(self.engine) as s, s.begin():
                            done[id(item[0])] = self._ingest_batch(s, [item], actor)[0]
                        break
                    except IntegrityError:
                        if attempt == 2:
                            raise
        return [p if isinstance(p, dict) else done[id(p)] for p in parsed]

    def _ingest_batch(self, s: Session, items: list[tuple[AlertIn, dict[str, Any]]],
                      actor: str) -> list[dict[str, Any]]:
        now = self.now()
        ids = {a.alert_id for a, _ in items}
        known: dict[tuple[str, str], str] = {
            (r.alert_id, r.state): r.case_id
            for r in s.execute(select(AlertRow.alert_id, AlertRow.state, AlertRow.case_id)
                               .where(AlertRow.alert_id.in_(ids)))}
        keys = {f"{a.grid_id}|{a.device_id}|{a.category}" for a, _ in items}
        by_key = {c.dedup_key: c for c in s.scalars(select(Case).where(Case.dedup_key.in_(keys),
                                                                         Case.status != "closed").with_for_update())}
        by_id = {c.id: c for c in by_key.values()}
        wanted = {known[(a.alert_id, "firing")] for a, _ in items
                  if a.state == "resolved" and (a.alert_id, "firing") in known} - by_id.keys()
        if wanted:
            by_id |= {c.id: c for c in s.scalars(select(Case).where(Case.id.in_(wanted)).with_for_update())}
        results, rows, log = [], [], []
        fresh: list[Any] = []  # new cases, inserted together before the rows that refer to them
        evidence: list[tuple[int, str, str, Any]] = []  # (row index, case id, alert id, base64 JPEG)
        clearing = {known.get((a.alert_id, "firing")) or getattr(by_key.get(f"{a.grid_id}|{a.device_id}|{a.category}"),
                                                                 "id", None) for a, _ in items if a.state == "resolved"}
        firing = self._firing_alerts(s, [c for c in clearing if c])  # case id -> its alerts still firing
        for alert, body in items:
            k = (alert.alert_id, alert.state)
            if k in known:
                results.append(self._result(alert, "duplicate", known[k]))
                continue
            observed = utc(alert.observed_at)
            key = f"{alert.grid_id}|{alert.device_id}|{alert.category}"
            case = by_id.get(known.get((alert.alert_id, "firing"), "")) if alert.state == "resolved" else None
            case = case or by_key.get(key)
            if case is None:
                case, opened = self._new_case(alert, observed, now)
                fresh.append(case)
                by_key[key], by_id[case.id] = case, case
                log.append(self._entry(case, now, actor, "opened", opened))
                status = "created"
            elif alert.state == "firing":
                case.alert_count += 1
                case.first_seen = min(case.first_seen, observed)
                case.last_seen = max(case.last_seen, observed)
                log.append(self._entry(case, now, actor, "merged",
                                       {"alert_id": alert.alert_id, "observed_at": observed.isoformat()}))
                if SEVERITY_RANK[alert.severity] > SEVERITY_RANK.get(case.severity, 0):  # a pre-alarm turned alarm
                    log.append(self._entry(case, now, actor, "severity_raised",
                                           {"from": case.severity, "to": alert.severity, "alert_id": alert.alert_id}))
                    case.severity = alert.severity
                if case.cleared_at is not None:
                    case.cleared_at = None
                    log.append(self._entry(case, now, actor, "condition_returned", {"alert_id": alert.alert_id}))
                status = "merged"
            else:
                status = "updated"
            still = firing.setdefault(case.id, set())
            if alert.state == "firing":
                still.add(alert.alert_id)
            else:
                still.discard(alert.alert_id)
            # cleared once every alert merged into the case has resolved, not at the first of them
            if alert.state == "resolved" and not still and case.cleared_at is None and case.status != "closed":
                case.cleared_at = observed
                log.append(self._entry(case, now, actor, "condition_cleared", {"alert_id": alert.alert_id}))
            snapshot = (body.get("evidence") or {}).get("snapshot_jpeg_b64")
            if snapshot:  # stored once the case rows exist
                body = {**body, "evidence": {**body["evidence"], "snapshot_jpeg_b64": None}}
                evidence.append((len(rows), case.id, alert.alert_id, snapshot))
            known[k] = case.id
            rows.append({"alert_id": alert.alert_id, "state": alert.state, "case_id": case.id,
                         "observed_at": observed, "received_at": now, "body": body})
            results.append(self._result(alert, status, case.id))
        s.flush()
        self._insert_fresh(s, fresh)
        for i, case_id, alert_id, snapshot in evidence:
            rows[i]["body"]["evidence"]["stored"] = self._evidence(s, case_id, alert_id, snapshot)
        bulk_insert(s, AlertRow, rows)
        bulk_insert(s, TimelineEntry, log)
        return results

    @staticmethod
    def _firing_alerts(s: Session, case_ids: list[str]) -> dict[str, set[str]]:
        if not case_ids:
            return {}
        out: dict[str, set[str]] = {}
        resolved: set[str] = set()
        for r in s.execute(select(AlertRow.case_id, AlertRow.alert_id, AlertRow.state)
                           .where(AlertRow.case_id.in_(case_ids))):
            if r.state == "firing":
                out.setdefault(r.case_id, set()).add(r.alert_id)
            else:
                resolved.add(r.alert_id)
        return {c: ids - resolved for c, ids in out.items()}

    @staticmethod
    def _insert_fresh(s: Session, fresh: list[Any]) -> None:
        if fresh:
            bulk_insert(s, Case, [vars(c) for c in fresh])
            fresh.clear()

    @staticmethod
    def _entry(case: Case, now: datetime, actor: str, action: str, detail: dict[str, Any]) -> dict[str, Any]:
        return {"case_id": case.id, "at": now, "actor": actor, "action": action, "detail": detail}

    def _evidence(self, s: Session, case_id: str, alert_id: str, b64: Any) -> int | str:
        """Keep a JPEG snapshot (size-capped) as the case's next evidence item; say why when it is not kept."""
        try:
            data = base64.b64decode(str(b64), validate=True)
        except (binascii.Error, ValueError):
            return "not base64"
        if len(data) > MAX_EVIDENCE_BYTES:
            return f"larger than {MAX_EVIDENCE_BYTES} bytes"
        if not data.startswith(b"\xff\xd8"):
            return "not a JPEG"
        s.flush()
        n = (s.scalar(select(func.max(Evidence.n)).where(Evidence.case_id == case_id)) or 0) + 1
        s.add(Evidence(case_id=case_id, n=n, alert_id=alert_id, content_type="image/jpeg", data=data))
        return n

    def evidence(self, case_id: str, n: int) -> Evidence | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.get(Evidence, (case_id, n))

    # ---- manual reports (一键上报) ---------------------------------------------------------------
    def open_manual(self, *, grid: str, category: str, tier: str, title: str, actor: str,
                    device: str | None = None) -> Case:
        """A grid worker's report: the 2-3-10 tiers set its resolve limit, unless a manual policy matches."""
        if grid not in self.org.units or self.org.units[grid].level != "grid":
            raise Conflict(f"{grid!r} is not a grid of the org tree")
        severity = {"general": "minor", "important": "major", "major": "critical"}[tier]
        policy = self._manual_policy(category, severity, tier)
        now = self.now()
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            case_id = new_case_id(now)
            case = Case(id=case_id, dedup_key=f"manual|{case_id}", status="open", manual=True, category=category,
                        severity=severity, grid=grid, device=device, owner=self.org.owner_at(grid, policy.start_level),
                        title=title, policy=policy.model_dump(mode="json"), opened_at=now, stage_started_at=now,
                        first_seen=now, last_seen=now, first_received=now, alert_count=0, escalations=0,
                        backup_notified=False, version=1)
            s.add(case)
            s.flush()
            self.log(s, case, now, actor, "opened", {"manual": True, "tier": tier, "policy": policy.id})
            self._schedule(s, case, now)
            return case

    def _manual_policy(self, category: str, severity: str, tier: str) -> Policy:
        for p in self.sla.policies:
            if p.match.manual is True and p.match.selects(category, severity, True):
                return p
        base = self.sla.policies[-1]
        limits = base.limits.model_copy(update={"resolve": getattr(self.sla.manual_tiers, tier)})
        return base.model_copy(update={"id": f"manual-{tier}", "limits": limits})

    def _new_case(self, alert: AlertIn, observed: datetime, now: datetime) -> tuple[SimpleNamespace, dict[str, Any]]:
        """A case to insert with plain SQL (ORM objects cost more than the rest of ingest together)."""
        policy = self.sla.policy_for(alert.category, alert.severity, manual=False)
        owner, note = self._owner(alert.grid_id, policy)
        case = SimpleNamespace(
            id=new_case_id(now), dedup_key=f"{alert.grid_id}|{alert.device_id}|{alert.category}", status="open",
            held_from=None, manual=False, category=alert.category, severity=alert.severity, grid=alert.grid_id,
            device=alert.device_id, owner=owner, title=alert.message, policy=policy.model_dump(mode="json"),
            opened_at=now, accepted_at=None, resolved_at=None, closed_at=None, stage_started_at=now,
            first_seen=observed, last_seen=observed, first_received=now, alert_count=1, cleared_at=None,
            escalations=0, backup_notified=False, last_reminder=None, next_due=None, light_announced=None,
            version=1)
        self._schedule(None, case, now, pauses=[], policy=policy)
        opened = {"alert_id": alert.alert_id, "policy": policy.id, "owner": owner}
        return case, {**opened, "note": note} if note else opened

    def _owner(self, grid: str, policy: Policy) -> tuple[str, str | None]:
        if grid in self.org.units:
            return self.org.owner_at(grid, policy.start_level), None
        top = next(u for u in self.org.units.values() if u.level == "district")
        return top.id, f"grid {grid!r} is not in the org tree; opened at {top.id}"

    @staticmethod
    def _result(alert: AlertIn, status: str, case_id: str) -> dict[str, Any]:
        return {"alert_id": alert.alert_id, "state": alert.state, "status": status, "case_id": case_id}

    # ---- case actions -------------------------------------------------------------------------
    def act(self, case_id: str, action: str, *, actor: str, note: str | None = None,
            unit: str | None = None) -> Case:
        """Carry out an operator action or raise Conflict with the reason (NotFound if no case)."""
        if action not in ACTIONS:
            raise Conflict(f"unknown action {action!r}")
        now = self.now()
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            case = s.get(Case, case_id, with_for_update=True)
            if case is None:
                raise NotFound(case_id)
            detail = getattr(self, f"_do_{action}")(s, case, now, note, unit)
            case.version += 1
            self.log(s, case, now, actor, action, detail)
            self._schedule(s, case, now)
            return case

    def _need(self, case: Case, action: str, *allowed: str) -> None:
        if case.status not in allowed:
            raise Conflict(f"cannot {action} a case that is {case.status} (allowed from: {', '.join(allowed)})")

    def _do_accept(self, s: Session, case: Case, now: datetime, note: str | None, unit: str | None) -> dict:
        self._need(case, "accept", "open")
        case.status, case.accepted_at, case.stage_started_at = "accepted", now, now
        return {"note": note} if note else {}

    def _do_resolve(self, s: Session, case: Case, now: datetime, note: str | None, unit: str | None) -> dict:
        self._need(case, "resolve", "accepted")
        if not note:
            raise Conflict("resolve needs a note saying what was done")
        case.status, case.resolved_at, case.stage_started_at = "resolved", now, now
        return {"note": note}

    def _do_close(self, s: Session, case: Case, now: datetime, note: str | None, unit: str | None) -> dict:
        self._need(case, "close", "resolved")
        case.status, case.closed_at, case.next_due = "closed", now, None
        return {"note": note} if note else {}

    def _do_hold(self, s: Session, case: Case, now: datetime, note: str | None, unit: str | None) -> dict:
        self._need(case, "hold", "open", "accepted", "resolved")
        if not note:
            raise Conflict("hold needs a reason")
        case.held_from, case.status = case.status, "on_hold"
        s.add(Pause(case_id=case.id, start=now, end=None, reason=note))
        return {"reason": note}

    def _do_resume(self, s: Session, case: Case, now: datetime, note: str | None, unit: str | None) -> dict:
        self._need(case, "resume", "on_hold")
        case.status, case.held_from = case.held_from or "open", None
        for p in s.scalars(select(Pause).where(Pause.case_id == case.id, Pause.end.is_(None))):
            p.end = now
        return {"note": note} if note else {}

    def _do_transfer(self, s: Session, case: Case, now: datetime, note: str | None, unit: str | None) -> dict:
        self._need(case, "transfer", "open", "accepted", "resolved", "on_hold")
        if unit is None or unit not in self.org.units:
            raise Conflict(f"transfer needs a unit of the org tree, got {unit!r}")
        previous, case.owner, case.stage_started_at = case.owner, unit, now
        case.backup_notified = False
        return {"from": previous, "to": unit, **({"note": note} if note else {})}

    def _do_comment(self, s: Session, case: Case, now: datetime, note: str | None, unit: str | None) -> dict:
        if not note:
            raise Conflict("comment needs text")
        return {"text": note}

    # ---- reading ------------------------------------------------------------------------------
    def get(self, case_id: str) -> tuple[Case, list[TimelineEntry], list[Pause]]:
        with Session(self.engine, expire_on_commit=False) as s:
            case = s.get(Case, case_id)
            if case is None:
                raise NotFound(case_id)
            tl = list(s.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case_id)
                                .order_by(TimelineEntry.id)))
            pauses = list(s.scalars(select(Pause).where(Pause.case_id == case_id).order_by(Pause.id)))
            return case, tl, pauses

    def alerts_of(self, case_id: str) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(AlertRow).where(AlertRow.case_id == case_id).order_by(AlertRow.received_at))
            return [{**r.body, "received_at": r.received_at.isoformat()} for r in rows]

    def clock_of(self, case: Any, pauses: list[Pause], now: datetime,
                 policy: Policy | None = None) -> tuple[str, ClockReading] | None:
        """The running stage and its clock, from the stamps; None once closed. `policy`: the case's
        snapshot already parsed, when the caller has it."""
        status = case.held_from if case.status == "on_hold" else case.status
        stage = {"open": "accept", "accepted": "resolve", "resolved": "feedback"}.get(status or "")
        if stage is None:
            return None
        policy = policy or Policy.model_validate(case.policy)
        cal = self.calendars.get(policy.calendar, Calendar.always())
        limit = limit_seconds(getattr(policy.limits, stage), cal)
        reading = stage_clock(started=case.stage_started_at, limit_s=limit, yellow_at=policy.yellow_at,
                              calendar=cal, now=now, pauses=[ClockPause(p.start, p.end) for p in pauses])
        return stage, reading

    # ---- bookkeeping --------------------------------------------------------------------------
    def _schedule(self, s: Session | None, case: Any, now: datetime, pauses: list[Pause] | None = None,
                  policy: Policy | None = None) -> None:
        if pauses is None:
            assert s is not None
            pauses = list(s.scalars(select(Pause).where(Pause.case_id == case.id)))
        found = self.clock_of(case, pauses, now, policy)
        if found is None:
            case.next_due = None
            return
        reading = found[1]
        # red and running: due now, for the escalation scheduler to act on
        case.next_due = reading.next_change or (None if reading.paused else now)

    @staticmethod
    def log(s: Session, case: Case, now: datetime, actor: str, action: str, detail: dict[str, Any]) -> None:
        """Append one timeline entry (the event log the stream and MQTT publisher read)."""
        s.add(TimelineEntry(case_id=case.id, at=now, actor=actor, action=action, detail=detail))
