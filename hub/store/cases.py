"""The store of the case aggregate: the queries of cases, their timeline, pauses, alerts and evidence, the
clock readings derived from stored stamps, and the append-only timeline. Works on SQLite and PostgreSQL.
Sessions come from here (`transaction` to write, `reading` to read); the other aggregates' queries live in
their service modules (docs/DESIGN.md §8b), and routes run none (an import contract keeps SQLAlchemy out
of `hub.api`).

The timeline is the event log the stream and the MQTT publisher follow by id. Entries are written at the end
of their transaction (`log` only queues them); on PostgreSQL under a transaction-scoped advisory lock, so ids
are handed out in commit order and a reader that has seen id N never later finds a smaller id committed
(two writers could otherwise commit out of id order and the reader would skip the earlier one). The same
transaction sends `NOTIFY gridwatch_events`, delivered at commit, to wake every hub process's reader;
listeners registered on the store (`on_events`) wake this process's readers on SQLite.

What changes a case lives beside it: `hub.cases.ingest` (alerts in), `hub.cases.actions` (people's actions and manual
reports), `hub.cases.scheduler` (lights and escalation on time); pure decisions in `hub.policy.lifecycle`,
`hub.policy.sla` and `hub.policy.escalation`; who may see and do what in `hub.policy.access`. Routes and the MQTT
publisher read through this module and the service modules, never with their own SQL.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, ColumnElement, Engine, Text, cast, func, insert, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.policy.access import Scope
from hub.policy.calendar import Calendar
from hub.policy.errors import Conflict, NotFound
from hub.policy.lifecycle import TimelineAction, clock_stage
from hub.policy.org import Org
from hub.policy.routing import Routing
from hub.policy.sla import ClockReading, Policy, SlaFile, Stage, limit_seconds, stage_clock
from hub.policy.sla import Pause as ClockPause
from hub.store.models import AlertRow, Base, Case, CaseClock, CasePart, Cursor, Evidence, Pause, TimelineEntry
from hub.store.windows import WindowCache

__all__ = ["Conflict", "NotFound", "Store", "Scope", "bulk_insert", "new_case_id"]

"""The org units whose cases a caller sees; None = the whole tree."""

EVENTS_CHANNEL = "gridwatch_events"
"""The PostgreSQL NOTIFY channel that says new timeline entries were committed."""
EVENTS_LOCK = 0x67726964  # "grid": the advisory lock key that orders timeline writers on PostgreSQL
_PENDING = "gridwatch.timeline"  # Session.info key: entries queued by `log`, written at commit


def bulk_insert(s: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows: COPY on PostgreSQL (psycopg's executemany sends one statement per row and was the
    bottleneck of alert intake), executemany elsewhere."""
    if not rows:
        return
    conn = s.connection()
    if conn.dialect.name != "postgresql":
        s.execute(insert(model), list(rows))
        return
    table = model.__table__
    cols = [c.name for c in table.columns if c.name in rows[0]]
    json_cols = {c.name for c in table.columns if isinstance(c.type, JSON)}
    import psycopg

    raw = conn.connection.driver_connection
    assert raw is not None
    sql = f"COPY {table.name} ({', '.join(cols)}) FROM STDIN"  # type: ignore[attr-defined]
    try:
        with raw.cursor().copy(sql) as copy:
            for r in rows:
                copy.write_row([json.dumps(r[c], ensure_ascii=False) if c in json_cols and r[c] is not None
                                else r[c] for c in cols])
    except psycopg.errors.IntegrityError as exc:  # as SQLAlchemy would raise it: callers retry on it
        raise IntegrityError(sql, None, exc) from exc


def new_case_id(now: datetime) -> str:
    """Time-ordered: 12 hex digits of milliseconds, then 8 random ones."""
    return f"{int(now.timestamp() * 1000):012x}{secrets.token_hex(4)}"


def visible_clause(scope: Scope) -> ColumnElement[bool] | None:
    """A case is seen from the subtree that owns it or where it happened, by the backup grid (AB角) it
    was offered to, and by the assisting units of its joint handling (协办)."""
    if scope is None:
        return None
    return or_(Case.owner.in_(scope), Case.grid.in_(scope), Case.backup.in_(scope),
               Case.id.in_(select(CasePart.case_id).where(CasePart.unit.in_(scope))))


@dataclass(frozen=True, slots=True)
class CaseFilter:
    """`GET /api/v1/cases` filters: each a value or several separated by commas; `q` searches the id, device,
    place and title (case-insensitive, literal); `since`/`until` bound the opening time (until exclusive);
    `before` is the paging cursor: only cases with a smaller id (ids are time-ordered), newest first."""

    status: str | None = None
    grid: str | None = None
    category: str | None = None
    limit: int = 500
    q: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        for col, val in ((Case.status, self.status), (Case.grid, self.grid), (Case.category, self.category)):
            if val is not None:
                out.append(col.in_(val.split(",")) if "," in val else col == val)
        if self.q:
            needle = self.q.lower()
            out.append(or_(*(func.lower(c).contains(needle, autoescape=True) for c in (
                Case.id, Case.device, Case.title, Case.grid, cast(Case.place, Text)))))
        if self.since is not None:
            out.append(Case.opened_at >= self.since)
        if self.until is not None:
            out.append(Case.opened_at < self.until)
        if self.before is not None:
            out.append(Case.id < self.before)
        return out


@dataclass(frozen=True, slots=True)
class EventRow:
    """One timeline entry with the case it belongs to: what the stream and MQTT publish."""

    entry: TimelineEntry
    case: Case


@dataclass
class Store:
    engine: Engine
    sla: SlaFile
    org: Org
    calendars: dict[str, Calendar]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    tz: str = "Asia/Shanghai"
    """The hub's time zone: recurring maintenance windows are in local time."""
    windows: WindowCache = field(default_factory=WindowCache)
    """Maintenance windows for intake, re-read at most once a second."""
    routing: Routing = field(default_factory=Routing.empty)
    """Where new cases go (分拣分拨): functional departments, joint handling, manual dispatch."""
    on_events: list[Callable[[], None]] = field(default_factory=list)
    """Called (from the writing thread) after a transaction that wrote timeline entries commits."""

    def today(self, now: datetime | None = None) -> date:
        """The day of `now` (default: the clock's) in the hub's time zone, as calendars count years."""
        return (now or self.clock()).astimezone(ZoneInfo(self.tz)).date()

    def now(self) -> datetime:
        """The store's stamps: UTC, millisecond precision."""
        t = self.clock().astimezone(UTC)
        return t.replace(microsecond=t.microsecond // 1000 * 1000)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads (ORM objects stay readable after it closes); writes go through `transaction`."""
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction; ORM objects stay readable after it commits. Timeline entries queued by
        `log`/`append_log` are written last, in id order with every other writer's (see the module doc)."""
        with Session(self.engine, expire_on_commit=False) as s:
            with s.begin():
                yield s
                wrote = self._write_timeline(s)
            if wrote:
                for wake in list(self.on_events):
                    wake()

    @staticmethod
    def _write_timeline(s: Session) -> bool:
        rows: list[dict[str, Any]] = s.info.pop(_PENDING, [])
        if not rows:
            return False
        s.flush()
        pg = s.get_bind().dialect.name == "postgresql"  # SQLite has one writer at a time: ids in commit order
        if pg:  # held to the end of the transaction: ids are handed out only after the last writer committed
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EVENTS_LOCK})
        bulk_insert(s, TimelineEntry, rows)
        if pg:
            s.execute(text("SELECT pg_notify(:c, '')"), {"c": EVENTS_CHANNEL})
        return True

    # ---- cases --------------------------------------------------------------------------------
    @staticmethod
    def lock_case(s: Session, case_id: str) -> Case:
        case = s.get(Case, case_id, with_for_update=True)
        if case is None:
            raise NotFound(case_id)
        return case

    @staticmethod
    def open_cases_by_key(s: Session, keys: set[str]) -> dict[str, Case]:
        """Open cases by dedup key (grid|device|category), locked for the ingest transaction."""
        q = select(Case).where(Case.dedup_key.in_(keys), Case.status != "closed").with_for_update()
        return {c.dedup_key: c for c in s.scalars(q)}

    @staticmethod
    def recent_closed(s: Session, keys: set[str], since: datetime) -> dict[str, tuple[str, datetime]]:
        """The newest case closed since `since` for each dedup key (grid|device|category): its id and closing
        time, to mark a new case of the same place and kind as a repeat (重复件). Read through the
        (grid, category, closed_at) index."""
        if not keys:
            return {}
        parts = [k.split("|") for k in keys]
        q = (select(Case.dedup_key, Case.id, Case.closed_at)
             .where(Case.grid.in_({p[0] for p in parts}), Case.category.in_({p[-1] for p in parts}),
                    Case.closed_at >= since, Case.dedup_key.in_(keys)))
        out: dict[str, tuple[str, datetime]] = {}
        for key, cid, closed in s.execute(q):
            if closed is not None and (key not in out or closed > out[key][1]):
                out[key] = (cid, closed)
        return out

    @staticmethod
    def cases_by_id(s: Session, ids: set[str]) -> dict[str, Case]:
        return {c.id: c for c in s.scalars(select(Case).where(Case.id.in_(ids)).with_for_update())} if ids else {}

    @staticmethod
    def due_cases(s: Session, now: datetime, limit: int) -> list[Case]:
        """Cases whose next boundary has come, locked; SKIP LOCKED so hub replicas share the work."""
        q = (select(Case).where(Case.next_due.is_not(None), Case.next_due <= now).order_by(Case.next_due)
             .limit(limit).with_for_update(skip_locked=True))
        return list(s.scalars(q))

    def get(self, case_id: str) -> tuple[Case, list[TimelineEntry], list[Pause]]:
        with Session(self.engine, expire_on_commit=False) as s:
            case = s.get(Case, case_id)
            if case is None:
                raise NotFound(case_id)
            tl = list(s.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case_id)
                                .order_by(TimelineEntry.id)))
            return case, tl, self.pauses(s, case_id)

    def list_cases(self, f: CaseFilter, scope: Scope) -> list[tuple[Case, list[Pause]]]:
        """Newest first (by id: ids are time-ordered), with their pauses (for the clocks)."""
        q = select(Case).where(*f.where()).order_by(Case.id.desc()).limit(f.limit)
        if (clause := visible_clause(scope)) is not None:
            q = q.where(clause)
        with Session(self.engine, expire_on_commit=False) as s:
            cases = list(s.scalars(q))
            pauses = self.pauses_of(s, [c.id for c in cases])
        return [(c, pauses.get(c.id, [])) for c in cases]

    def walk_cases(self, f: CaseFilter, scope: Scope, batch: int = 1000) -> Iterator[tuple[Case, list[Pause]]]:
        """Every case matching `f`, newest first, read `batch` at a time by the id cursor (one short
        session per batch): an export of 100,000 cases never holds more than one batch."""
        before = f.before
        while True:
            page = self.list_cases(replace(f, before=before, limit=batch), scope)
            yield from page
            if len(page) < batch:
                return
            before = page[-1][0].id

    @staticmethod
    def pauses_of(s: Session, case_ids: Sequence[str]) -> dict[str, list[Pause]]:
        """The pauses of these cases, by case (for their clocks)."""
        pauses: dict[str, list[Pause]] = {}
        for i in range(0, len(case_ids), 5000):
            for p in s.scalars(select(Pause).where(Pause.case_id.in_(case_ids[i:i + 5000]))):
                pauses.setdefault(p.case_id, []).append(p)
        return pauses

    def case_rows(self, scope: Scope, *where: ColumnElement[bool]) -> list[tuple[Any, ...]]:
        """(id, category, grid, device, opened_at, closed_at) of the visible cases matching `where`."""
        q = select(Case.id, Case.category, Case.grid, Case.device, Case.opened_at, Case.closed_at).where(*where)
        if (clause := visible_clause(scope)) is not None:
            q = q.where(clause)
        with Session(self.engine) as s:
            return [tuple(r) for r in s.execute(q)]

    def day_counts(self, start: datetime, scope: Scope) -> dict[str, int]:
        """Cases opened and closed since `start`, cases whose clock turned red since then, and open cases."""
        clause = visible_clause(scope)
        where = [clause] if clause is not None else []
        with Session(self.engine) as s:
            def count(*cond: ColumnElement[bool]) -> int:
                return int(s.scalar(select(func.count()).select_from(Case).where(*where, *cond)) or 0)
            reds = {case_id for case_id, detail in s.execute(
                select(TimelineEntry.case_id, TimelineEntry.detail).join(Case, Case.id == TimelineEntry.case_id)
                .where(TimelineEntry.action == "light", TimelineEntry.at >= start, *where))
                if (detail or {}).get("light") == "red"}
            return {"opened_today": count(Case.opened_at >= start), "closed_today": count(Case.closed_at >= start),
                    "overdue_today": len(reds), "open": count(Case.status != "closed")}

    def case_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Cases by status, and open cases by their last announced light (for /metrics)."""
        with Session(self.engine) as s:
            by_status = {str(st): int(n) for st, n in s.execute(select(Case.status, func.count())
                                                                 .group_by(Case.status))}
            by_light: dict[str, int] = {}
            for light, n in s.execute(select(Case.light_announced, func.count())
                                      .where(Case.status != "closed").group_by(Case.light_announced)):
                by_light[light or "green"] = by_light.get(light or "green", 0) + int(n)
        return by_status, by_light

    # ---- alerts and evidence ------------------------------------------------------------------
    @staticmethod
    def known_alerts(s: Session, alert_ids: set[str]) -> dict[tuple[str, str], str]:
        """(alert id, state) -> case id, for the alerts already taken."""
        q = select(AlertRow.alert_id, AlertRow.state, AlertRow.case_id).where(AlertRow.alert_id.in_(alert_ids))
        return {(r.alert_id, r.state): r.case_id for r in s.execute(q)}

    @staticmethod
    def firing_alerts(s: Session, case_ids: set[str]) -> dict[str, set[str]]:
        """Case id -> ids of its merged alerts that have not resolved."""
        if not case_ids:
            return {}
        out: dict[str, set[str]] = {}
        resolved: set[str] = set()
        for r in s.execute(select(AlertRow.case_id, AlertRow.alert_id, AlertRow.state)
                           .where(AlertRow.case_id.in_(case_ids))):
            if r.state == "firing":
                out.setdefault(r.case_id, set()).add(r.alert_id)
            elif r.state == "resolved":  # (a level change, `warning:n`, leaves it firing)
                resolved.add(r.alert_id)
        return {c: ids - resolved for c, ids in out.items()}

    @staticmethod
    def next_evidence_number(s: Session, case_id: str) -> int:
        s.flush()
        return int(s.scalar(select(func.max(Evidence.n)).where(Evidence.case_id == case_id)) or 0) + 1

    def alerts_of(self, case_id: str) -> list[dict[str, Any]]:
        """The stored alert bodies of a case, each with the hub's receive time."""
        with Session(self.engine) as s:
            rows = s.scalars(select(AlertRow).where(AlertRow.case_id == case_id).order_by(AlertRow.received_at))
            return [{**r.body, "received_at": r.received_at.isoformat()} for r in rows]

    def evidence(self, case_id: str, n: int) -> Evidence | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.get(Evidence, (case_id, n))

    # ---- the event log (timeline) -------------------------------------------------------------
    def events_after(self, after: int, scope: Scope, limit: int = 500) -> list[EventRow]:
        q = (select(TimelineEntry, Case).join(Case, Case.id == TimelineEntry.case_id)
             .where(TimelineEntry.id > after).order_by(TimelineEntry.id).limit(limit))
        if (clause := visible_clause(scope)) is not None:
            q = q.where(clause)
        with Session(self.engine, expire_on_commit=False) as s:
            return [EventRow(e, c) for e, c in s.execute(q)]

    def last_event_id(self) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(func.coalesce(func.max(TimelineEntry.id), 0))) or 0)

    def cursor(self, name: str) -> int | None:
        with Session(self.engine) as s:
            row = s.get(Cursor, name)
            return None if row is None else int(row.last_id)

    def save_cursor(self, name: str, last_id: int) -> None:
        with Session(self.engine) as s, s.begin():
            row = s.get(Cursor, name)
            if row is None:
                s.add(Cursor(name=name, last_id=last_id))
            else:
                row.last_id = last_id

    @staticmethod
    def log(s: Session, case: Case, now: datetime, actor: str, action: TimelineAction,
            detail: dict[str, Any]) -> None:
        """Append one timeline entry (the event log the stream and MQTT publisher read), written when
        the transaction commits."""
        Store.append_log(s, [{"case_id": case.id, "at": now, "actor": actor, "action": action,
                              "detail": detail}])

    @staticmethod
    def append_log(s: Session, rows: Sequence[dict[str, Any]]) -> None:
        """Queue timeline rows (case_id, at, actor, action, detail) for the end of the transaction."""
        s.info.setdefault(_PENDING, []).extend(rows)

    # ---- clocks -------------------------------------------------------------------------------
    @staticmethod
    def pauses(s: Session, case_id: str) -> list[Pause]:
        return list(s.scalars(select(Pause).where(Pause.case_id == case_id).order_by(Pause.id)))

    @staticmethod
    def open_pauses(s: Session, case_id: str) -> list[Pause]:
        return list(s.scalars(select(Pause).where(Pause.case_id == case_id, Pause.end.is_(None))))

    def clock_of(self, case: CaseClock, pauses: Sequence[Pause], now: datetime,
                 policy: Policy | None = None, *, level: bool = False) -> tuple[Stage, ClockReading] | None:
        """The running stage and its clock, from the stamps; None once closed. `policy`: the case's
        snapshot already parsed, when the caller has it. `level`: the escalation clock instead, which
        restarts when the case reaches a new owner (escalation, backup grid, transfer) while the stage
        clock (the light, 已挂单) runs on from the stage's start."""
        stage = clock_stage(case.status, case.held_from)
        if stage is None:
            return None
        policy = policy or Policy.model_validate(case.policy)
        cal = self.calendars.get(policy.calendar, Calendar.always())
        limit = limit_seconds(getattr(policy.limits, stage), cal) + (case.stage_extra_s or 0.0)  # 延期 granted
        started = (case.level_started_at or case.stage_started_at) if level else case.stage_started_at
        reading = stage_clock(started=started, limit_s=limit, yellow_at=policy.yellow_at,
                              calendar=cal, now=now, pauses=[ClockPause(p.start, p.end) for p in pauses])
        return stage, reading

    def deadline(self, case: CaseClock, reading: ClockReading, now: datetime) -> datetime:
        """限期: when the running stage's limit runs out (or ran out), on the policy's calendar."""
        cal = self.calendars.get(str(case.policy.get("calendar", "24x7")), Calendar.always())
        limit = reading.elapsed_s + reading.remaining_s
        paused = max(0.0, cal.working_seconds(case.stage_started_at, now) - reading.elapsed_s)  # held so far
        return cal.add(case.stage_started_at, limit + paused)

    def schedule(self, s: Session | None, case: CaseClock, now: datetime, pauses: Sequence[Pause] | None = None,
                 policy: Policy | None = None) -> None:
        """Set the case's `next_due`: its next light change, now when red and running, None when paused
        or closed."""
        if pauses is None:
            assert s is not None
            pauses = self.pauses(s, case.id)
        found = self.clock_of(case, pauses, now, policy)
        if found is None:
            case.next_due = None
            return
        reading = found[1]
        if reading.paused:
            case.next_due = None
            return
        level = self.clock_of(case, pauses, now, policy, level=True)
        assert level is not None
        changes = [r.next_change for r in (reading, level[1]) if r.next_change is not None]
        if level[1].light == "red":
            changes.append(now)  # the owner is overdue: escalation, backup or a reminder is due now
        case.next_due = min(changes, default=None)

