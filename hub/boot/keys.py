"""The hub's two keys at start (issue 42): the data key sealing contact points (`hub.store.datakey`) and the
audit chain's key (`hub.audit.trail`), each from the environment or a key file, and both checked against what
the database already holds, so two hubs of one database given different keys fail loudly at start (and in
`hub check`) instead of sealing what their twins cannot open or chaining records their twins cannot verify."""

from __future__ import annotations

import logging
import os
import secrets

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from hub.audit import trail
from hub.config import HubConfig
from hub.store import datakey
from hub.store.models import AuditHead, AuditRow, KeyCheck

logger = logging.getLogger(__name__)
CHECK = "gridwatch data key check"


class KeyMismatch(RuntimeError):
    """The configured key cannot open (or verify) what the database holds."""


def configure(cfg: HubConfig) -> None:
    """Both keys configured in this process, from the environment or their files (made when missing)."""
    keys, source = datakey.keys_from(dict(os.environ), cfg.data_key_file)
    datakey.configure(keys)
    logger.info("contact points sealed with the data key from %s (%d key(s))", source, len(keys))
    env = dict(os.environ)
    if env.get("GRIDWATCH_AUDIT_KEYS") or env.get("GRIDWATCH_AUDIT_KEY"):
        text = env.get("GRIDWATCH_AUDIT_KEYS") or env["GRIDWATCH_AUDIT_KEY"]
        audit_keys, where = [k.strip().encode() for k in text.split(",") if k.strip()], "the environment"
    else:
        assert cfg.audit.key_file is not None  # (resolved)
        audit_keys = datakey.key_lines(cfg.audit.key_file, lambda: secrets.token_hex(32).encode(),
                                       "the audit chain's key", "GRIDWATCH_AUDIT_KEY")
        where = str(cfg.audit.key_file)
    trail.configure(audit_keys, cfg.audit.mac)
    logger.info("audit records chained with %s under the key from %s", cfg.audit.mac, where)


def check(engine: Engine, *, write: bool) -> list[str]:
    """What the configured keys cannot open or verify in this database (nothing: they are its keys). With
    `write`, the data key's check value is made when missing and sealed again with the newest key."""
    problems: list[str] = []
    with Session(engine) as s, s.begin():
        row = s.get(KeyCheck, "data_key")
        if row is None:
            if write:
                s.add(KeyCheck(name="data_key", value=datakey.seal(CHECK)))
        else:
            try:
                ok = datakey.unseal(row.value) == CHECK
            except ValueError:
                ok = False
            if not ok:
                problems.append("the data key (GRIDWATCH_DATA_KEY(S) or data_key_file) is not the one this "
                                "database's contact points are sealed with: give every hub of it the same key")
            elif write:
                row.value = datakey.reseal(row.value)
        head = s.get(AuditHead, 1)
        last = s.scalar(select(AuditRow.mac).where(AuditRow.seq == head.seq)) if head is not None else None
        if last is not None:
            alg, _, kid = last.partition("/")
            if kid not in trail.configured_ids():
                problems.append(f"the audit trail's newest record is keyed with {last}, a key this hub was not "
                                "given (GRIDWATCH_AUDIT_KEYS or audit.key_file): give every hub the same key")
    return problems
