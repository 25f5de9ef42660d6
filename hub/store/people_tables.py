"""The tables of people, sign-in, the audit trail and notices: accounts, recovery codes, sessions, API keys,
contact points (sealed), audit records with the chain's head, and the notice queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, Sealed


class User(Base):
    """A person who signs in to the board (网格员, a command center's staff, an administrator): a name, the
    unit they work for, a role, and a password hashed with Argon2id (argon2-cffi)."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    unit: Mapped[str | None] = mapped_column(String(64))  # None: an administrator of the whole tree
    role: Mapped[str] = mapped_column(String(16))  # operator | viewer | sysadmin | secadmin | auditor
    password_hash: Mapped[str] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # per-account protection: wrong passwords since the last success or lock, locks in a row, until when
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    # two-factor (TOTP, RFC 6238): the secret sealed at rest, one being enrolled, the last time step used
    totp_secret: Mapped[str | None] = mapped_column(Sealed())
    totp_pending: Mapped[str | None] = mapped_column(Sealed())
    totp_step: Mapped[int | None] = mapped_column(BigInteger)
    password_changed_at: Mapped[datetime | None]  # None: before issue 30 (counted from updated_at)
    removed_at: Mapped[datetime | None]  # removed: contact points and second factor erased, cannot sign in
    # a one-time code by SMS (issue 42): salted SHA-256 of it, when it was sent (it lives SMS_CODE_LIFE), tries
    sms_code: Mapped[str | None] = mapped_column(String(128))
    sms_sent_at: Mapped[datetime | None]
    sms_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RecoveryCode(Base):
    """A two-factor recovery code (shown once): its SHA-256, and when it was used (each works once)."""

    __tablename__ = "recovery_codes"

    hash: Mapped[str] = mapped_column(String(80), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    used_at: Mapped[datetime | None]


class UserSession(Base):
    """A signed-in session: the SHA-256 of its bearer token (the token itself is never stored)."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(80), primary_key=True)
    username: Mapped[str | None] = mapped_column(ForeignKey("users.username"), index=True)  # a person's, or
    key_name: Mapped[str | None] = mapped_column(String(64))  # a key signed in on the board
    last_seen: Mapped[datetime | None]  # for the idle timeout
    limited: Mapped[str | None] = mapped_column(String(16))  # "two_factor" | "password": only to put that right
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class KeyRow(Base):
    """An API key for a machine (an edge agent, an integration) added through the API: live without a
    restart, beside the keys of hub.yaml. Only its hash is kept."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(64))
    grids: Mapped[list[str] | None] = mapped_column(JSON)
    hash: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]
    actor: Mapped[str] = mapped_column(String(128))
    sources: Mapped[list[str] | None] = mapped_column(JSON)  # the addresses it may be used from (none: any)


class Contact(Base):
    """How a person is reached (issue 26): shown in full only to administrators and to the person, masked
    elsewhere, never logged, sealed at rest (issue 30)."""

    __tablename__ = "contacts"

    username: Mapped[str] = mapped_column(ForeignKey("users.username"), primary_key=True)
    mobile: Mapped[str | None] = mapped_column(Sealed())
    email: Mapped[str | None] = mapped_column(Sealed())
    wecom_user: Mapped[str | None] = mapped_column(Sealed())  # 企业微信 userid, for <@userid> in a group robot
    dingtalk_mobile: Mapped[str | None] = mapped_column(Sealed())  # 钉钉 atMobiles
    feishu_user: Mapped[str | None] = mapped_column(Sealed())  # 飞书 open_id or user_id, for a post's at tag
    updated_at: Mapped[datetime]


class AuditRow(Base):
    """One security-relevant act (hub.audit.trail): who, when, from where, what, how it ended; chained by hashes."""

    __tablename__ = "audit"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(256))
    outcome: Mapped[str] = mapped_column(String(16))  # ok | refused | failed
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str | None] = mapped_column(String(32))  # hmac-sha256/<key id>, hmac-sm3/<key id>; None: SHA-256


class AuditHead(Base):
    """The chain's head, one row: appenders take it (a row lock) so the chain never forks across replicas."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class KeyCheck(Base):
    """A value sealed with the data key, so a hub given another key (a config in another folder, a replica
    without the environment) refuses to start instead of sealing contact points its twins cannot open."""

    __tablename__ = "key_checks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(512))


class Notice(Base):
    """One notice to one recipient on one channel (hub.notify.notifier): planned from a case event once (its `key`,
    event + recipient + channel, is unique), then sent, retried with back-off, grouped per robot, or stopped
    by its `guard` when the case moved on (签收 stops the escalation notices of the stage)."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_state_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    case_id: Mapped[str | None] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # opened | yellow | red | still_red | escalated | ...
    channel: Mapped[str] = mapped_column(String(64))  # the channel's id in notify.yaml
    target: Mapped[str] = mapped_column(String(200))  # where it goes: a robot, a mobile, a mailbox (masked here)
    recipient: Mapped[str | None] = mapped_column(String(64))  # the person (username), None for a unit's webhook
    urgent: Mapped[bool] = mapped_column(Boolean)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # the rendered message: title, text, sms params
    guard: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {status, stage_started_at}: stop when changed
    state: Mapped[str] = mapped_column(String(16))  # pending | sending | delivered | failed | stopped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    error: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[int | None] = mapped_column(BigInteger)  # the message it went in: its first notice's id
