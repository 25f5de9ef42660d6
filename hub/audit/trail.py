"""The audit trail (等保 安全审计): security-relevant acts in an append-only table chained by SHA-256.

Each record (`hub.store.models.AuditRow`) holds who (actor, role), when, from where (the client address, behind
trusted proxies the forwarded one), what (action, target, detail) and how it ended (ok, refused, failed), its
sequence number, the hash of the record before it and its own hash: SHA-256 over the previous hash and the
record's canonical JSON. Appenders take the one `audit_head` row first (an UPDATE: a row lock on PostgreSQL,
the write lock on SQLite), so records of every replica form one chain with consecutive numbers. `verify`
walks the chain: a record altered (its hash no longer matches), deleted (a gap, or the next record's
`prev_hash` points at nothing) or inserted is named. Pruning past the retention (`prune`) keeps the chain
checkable: the first kept record's `prev_hash` is recorded in the audit as the prune's own record.

What is recorded: sign-ins (success, failure, lock), sign-outs, accounts, keys and their changes, unlocks,
contact points, the rule file saved and deployed, maintenance windows, the device registry, exports (with
their filter and row count), every permission refusal (403), and config reloads with the file's hash
(`hub.api.audit` for the API, `hub.files.reload` for reloads).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from hub.store.cases import Store
from hub.store.models import AuditHead, AuditRow

logger = logging.getLogger(__name__)
GENESIS = "0" * 64
Outcome = Literal["ok", "refused", "failed"]
RETENTION_FLOOR_DAYS = 180  # 等保: audit records kept at least six months


@dataclass(frozen=True, slots=True)
class Act:
    actor: str
    action: str
    outcome: Outcome = "ok"
    role: str | None = None
    address: str | None = None
    target: str | None = None
    detail: dict[str, Any] | None = None


def digest(prev: str, seq: int, at: datetime, act: Act | AuditRow) -> str:
    """SHA-256 of the previous hash and the record's canonical JSON (sorted keys, UTC stamp to the µs)."""
    body = {"seq": seq, "at": at.isoformat(timespec="microseconds"), "actor": act.actor, "role": act.role,
            "address": act.address, "action": act.action, "target": act.target, "outcome": act.outcome,
            "detail": act.detail or {}}
    text = prev + json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def append(store: Store, act: Act) -> int:
    """Record one act at the end of the chain (its own transaction); its sequence number."""
    with store.transaction() as s:
        return append_in(s, act, store.now())


def append_in(s: Session, act: Act, at: datetime) -> int:
    """Record one act inside the caller's transaction (it commits with what it records)."""
    head = s.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
                     .returning(AuditHead.seq, AuditHead.last_hash)).one()
    seq, prev = int(head.seq), str(head.last_hash)
    at = at.astimezone(UTC)  # as the database gives it back (hub.models.UtcDateTime), for the digest
    h = digest(prev, seq, at, act)
    s.add(AuditRow(seq=seq, at=at, actor=act.actor[:128], role=act.role, address=act.address, action=act.action,
                   target=(act.target or None) and act.target[:256], outcome=act.outcome, detail=act.detail or {},
                   prev_hash=prev, hash=h))
    s.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=h))
    return seq


@dataclass(frozen=True, slots=True)
class Broken:
    seq: int
    reason: str


def verify(engine: Engine) -> tuple[int, list[Broken]]:
    """Walk the whole chain: (records checked, what is broken, by sequence number)."""
    problems: list[Broken] = []
    n = 0
    with Session(engine) as s:
        head = s.get(AuditHead, 1)
        prev: str | None = None
        expected: int | None = None
        last_seq = 0
        pruned_to = {int(d["first_kept"]) for d in s.scalars(select(AuditRow.detail).where(
            AuditRow.action == "audit_pruned")) if isinstance(d, dict) and d.get("first_kept") is not None}
        for row in s.scalars(select(AuditRow).order_by(AuditRow.seq)).yield_per(1000):
            n += 1
            if expected is None and row.seq != 1 and row.seq not in pruned_to:
                problems.append(Broken(1, f"records 1..{row.seq - 1} are missing and no prune recorded it"))
            if expected is not None and row.seq != expected:
                problems.append(Broken(expected, f"records {expected}..{row.seq - 1} are missing (deleted)"))
            if prev is not None and row.prev_hash != prev:
                problems.append(Broken(row.seq, "does not follow the record before it (a record before it was "
                                                "altered, deleted or inserted)"))
            if digest(row.prev_hash, row.seq, row.at, row) != row.hash:
                problems.append(Broken(row.seq, "altered: its content no longer matches its hash"))
            prev, expected, last_seq = row.hash, row.seq + 1, row.seq
        if head is not None and n and (head.seq != last_seq or head.last_hash != prev):
            problems.append(Broken(head.seq, f"the chain ends at {last_seq} but its head says {head.seq}: records "
                                             "after it were deleted (or some inserted outside the hub)"))
    return n, problems


def listing(store: Store, *, actor: str | None = None, action: str | None = None, since: datetime | None = None,
            until: datetime | None = None, limit: int = 500) -> list[AuditRow]:
    """Records newest first, filtered."""
    q = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
    if actor:
        q = q.where(AuditRow.actor == actor)
    if action:
        q = q.where(AuditRow.action == action)
    if since:
        q = q.where(AuditRow.at >= since)
    if until:
        q = q.where(AuditRow.at < until)
    with Session(store.engine) as s:
        return list(s.scalars(q))


def prune(store: Store, days: float) -> int:
    """Delete records older than `days`; the prune is itself recorded, naming the hash the kept chain starts
    from, so `verify` can tell a prune from a deletion."""
    cutoff = store.now() - timedelta(days=days)
    with store.transaction() as s:
        first_kept = s.scalar(select(func.min(AuditRow.seq)).where(AuditRow.at >= cutoff))
        gone = int(s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.at < cutoff)) or 0)
        if gone:
            s.execute(delete(AuditRow).where(AuditRow.at < cutoff))
            append_in(s, Act("system", "audit_pruned", detail={"older_than_days": days, "deleted": gone,
                                                               "first_kept": first_kept}), store.now())
    return gone
