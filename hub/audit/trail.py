"""The audit trail (等保 安全审计): security-relevant acts in an append-only table chained by a keyed hash.

Each record (`hub.store.models.AuditRow`) holds who (actor, role), when, from where (the client address, behind
trusted proxies the forwarded one), what (action, target, detail) and how it ended (ok, refused, failed), its
sequence number, the hash of the record before it and its own hash: an HMAC (SHA-256, or SM3 for 国密) under the
audit key over the previous hash and the record's canonical JSON. The key lives outside the database
(`GRIDWATCH_AUDIT_KEYS`, or `audit.key_file`): whoever can write the database but not read the key cannot
rewrite a record, or the tail and the head together, without `verify` seeing it. Each record names its MAC and
key (`mac`: `hmac-sha256/<key id>`, `hmac-sm3/<key id>`), so keys and algorithms rotate with no record lost
(a new key first in the list signs; the old ones still verify). Records from before keys (and a process that
configured none: a tool, a test building a store by hand) are plain SHA-256 (`mac` null); a plain record after
a keyed one is a rewrite. Appenders take the one `audit_head` row first (an UPDATE: a row lock on PostgreSQL,
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
import hmac
import json
import logging
import threading
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


Mac = Literal["hmac-sha256", "hmac-sm3"]
_lock = threading.Lock()
_keys: dict[str, bytes] = {}  # key id -> key; every configured key verifies
_signing: str | None = None  # "<mac>/<key id>" new records are made with (None: plain SHA-256)


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"gridwatch-audit-key:" + key).hexdigest()[:8]


def configure(keys: list[bytes], mac: Mac = "hmac-sha256") -> None:
    """Key the chain: the first key signs new records with `mac`; all of them verify older ones."""
    global _signing
    if mac == "hmac-sm3":
        sm3_available()
    with _lock:
        _keys.clear()
        _keys.update({key_id(k): k for k in keys})
        _signing = f"{mac}/{key_id(keys[0])}" if keys else None


def sm3_available() -> None:
    """SM3 from the `cryptography` package (OpenSSL 1.1.1+ builds carry it); a clear error otherwise."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import hmac as chmac

    try:
        chmac.HMAC(b"k", hashes.SM3())
    except UnsupportedAlgorithm:
        raise ValueError("this OpenSSL has no SM3: audit.mac hmac-sm3 cannot be used here") from None


def signing() -> str | None:
    return _signing


def configured_ids() -> set[str]:
    return set(_keys)


def _body(seq: int, at: datetime, act: Act | AuditRow) -> bytes:
    body = {"seq": seq, "at": at.isoformat(timespec="microseconds"), "actor": act.actor, "role": act.role,
            "address": act.address, "action": act.action, "target": act.target, "outcome": act.outcome,
            "detail": act.detail or {}}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def digest(prev: str, seq: int, at: datetime, act: Act | AuditRow, mac: str | None = None) -> str:
    """The record's hash over the previous hash and its canonical JSON (sorted keys, UTC stamp to the µs):
    plain SHA-256 (`mac` None), or the HMAC `mac` names under its key (KeyError: that key is not configured)."""
    text = prev.encode() + _body(seq, at, act)
    if mac is None:
        return hashlib.sha256(text).hexdigest()
    alg, _, kid = mac.partition("/")
    key = _keys[kid]
    if alg == "hmac-sha256":
        return hmac.new(key, text, hashlib.sha256).hexdigest()
    if alg == "hmac-sm3":
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives import hmac as chmac

        h = chmac.HMAC(key, hashes.SM3())
        h.update(text)
        return h.finalize().hex()
    raise KeyError(alg)


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
    act = Act(act.actor[:128], act.action, act.outcome, act.role, act.address,
              (act.target or None) and act.target[:256], act.detail or {})
    mac = _signing
    h = digest(prev, seq, at, act, mac)
    s.add(AuditRow(seq=seq, at=at, actor=act.actor, role=act.role, address=act.address, action=act.action,
                   target=act.target, outcome=act.outcome, detail=act.detail, prev_hash=prev, hash=h, mac=mac))
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
        keyed = False
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
            if row.mac is None and keyed:
                problems.append(Broken(row.seq, "not keyed after keyed records: rewritten by someone without the "
                                                "audit key"))
            keyed = keyed or row.mac is not None
            try:
                right = hmac.compare_digest(digest(row.prev_hash, row.seq, row.at, row, row.mac), row.hash)
            except KeyError:
                problems.append(Broken(row.seq, f"keyed with {row.mac}, a key this process was not given "
                                                "(GRIDWATCH_AUDIT_KEYS: keep the old keys after the new one)"))
                right = True
            if not right:
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
