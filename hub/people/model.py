"""Who a caller is, as the people modules hand it out: a person, a new session (`Login`), whom a valid session
stands for (`Signed`), and the session tokens' form."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from hub.config import ApiKey
from hub.store.models import User

PersonRole = Literal["operator", "viewer", "sysadmin", "secadmin", "auditor"]
PERSON_ROLES: tuple[str, ...] = get_args(PersonRole)
SESSION_PREFIX = "gws_"


@dataclass(frozen=True, slots=True)
class Person:
    username: str
    name: str
    unit: str | None
    role: PersonRole
    disabled: bool = False
    locked_until: datetime | None = None
    two_factor: bool = False  # a TOTP secret enrolled
    removed: bool = False


@dataclass(frozen=True, slots=True)
class Login:
    """A new session: the token (for the cookie or the Authorization header), whom it stands for, until when,
    and what it is limited to ("two_factor", "password") until put right."""

    token: str
    person: Person | None
    key: ApiKey | None
    expires: datetime
    limited: str | None


@dataclass(frozen=True, slots=True)
class Signed:
    """Whom a valid session stands for: a person, or a key signed in on the board."""

    person: Person | None
    key: ApiKey | None
    limited: str | None


def token_hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def is_session_token(token: str) -> bool:
    return token.startswith(SESSION_PREFIX)


def person_of(u: User) -> Person:
    return Person(u.username, u.name, u.unit, u.role, u.disabled, u.locked_until,  # type: ignore[arg-type]
                  u.totp_secret is not None, u.removed_at is not None)
