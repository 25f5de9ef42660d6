"""The second factor: TOTP (RFC 6238, pyotp), required of the roles in `sign_in.two_factor` and of every
administrator. The secret is sealed at rest (`hub.store.datakey`), each time step is accepted once (a code cannot
be replayed), and ten recovery codes, kept as SHA-256 hashes, each work once. A person with a mobile number and
no authenticator app gets a one-time code by SMS instead (issue 42): six digits, a salted hash kept, good for
`SMS_CODE_LIFE_S`, once, and for `SMS_TRIES` tries; a new one at most every `SMS_RESEND_S`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hub.audit import trail as audit
from hub.people.base import PeopleBase
from hub.people.model import Person, person_of
from hub.policy.errors import Conflict, NotFound
from hub.store.models import RecoveryCode, User, UserSession

SMS_CODE_LIFE_S = 300.0
SMS_RESEND_S = 60.0
SMS_TRIES = 5
ISSUER = "gridwatch"  # the name an authenticator app shows beside the account
RECOVERY_CODES = 10


class SecondFactor(PeopleBase):
    def begin_totp(self, username: str) -> str:
        """A new TOTP secret for this person, kept (sealed) until a code from it confirms the enrolment; its
        otpauth:// URI for an authenticator app is returned (and shown as a QR code)."""
        secret = pyotp.random_base32()
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                raise NotFound(f"no user {username!r}")
            u.totp_pending = secret
        return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)

    def confirm_totp(self, username: str, code: str) -> list[str]:
        """A code from the pending secret makes it the person's second factor; the recovery codes returned are
        shown once (only their hashes are kept). Other sessions of the person end."""
        now = self.store.now()
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                raise NotFound(f"no user {username!r}")
            if u.totp_pending is None:
                raise Conflict("no enrolment begun: ask for a new secret first", "no_enrolment")
            trial = User(totp_secret=u.totp_pending, totp_step=None)
            if not totp_ok(trial, code, now):
                raise Conflict("that code is not the authenticator's current one", "wrong_code")
            u.totp_secret, u.totp_pending, u.totp_step = u.totp_pending, None, trial.totp_step
            codes = new_recovery_codes(s, username)
        return codes

    def new_recovery(self, username: str) -> list[str]:
        """New recovery codes (the old ones stop working)."""
        with self.store.transaction() as s:
            u = s.get(User, username)
            if u is None or u.totp_secret is None:
                raise Conflict("no second factor enrolled", "no_enrolment")
            return new_recovery_codes(s, username)

    def drop_totp(self, username: str) -> Person:
        """The second factor removed (an administrator's reset for a lost phone): the person enrols again at the
        next sign-in if their role needs one; their sessions end."""
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                raise NotFound(f"no user {username!r}")
            u.totp_secret = u.totp_pending = None
            u.totp_step = None
            s.execute(delete(RecoveryCode).where(RecoveryCode.username == username))
            s.execute(delete(UserSession).where(UserSession.username == username))
            person = person_of(u)
        self._forget(username)
        return person

    def two_factor(self, username: str) -> tuple[bool, int]:
        """Whether the person has a second factor, and how many unused recovery codes they hold."""
        with Session(self.store.engine) as s:
            u = s.get(User, username)
            left = s.scalar(select(func.count()).select_from(RecoveryCode).where(
                RecoveryCode.username == username, RecoveryCode.used_at.is_(None))) or 0
            return (u is not None and u.totp_secret is not None), left


def totp_ok(u: User, code: str, now: datetime) -> bool:
    """A TOTP code of this person's secret for now (one step either side for clock drift), never one of a step
    already used: the step is kept, so a code seen over a shoulder or replayed is refused."""
    code = code.strip().replace(" ", "")
    if u.totp_secret is None or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(u.totp_secret)
    at = totp.timecode(now)
    for step in (at - 1, at, at + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and step > (u.totp_step or -1):
            u.totp_step = step
            return True
    return False


def sms_hash(code: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    return f"{salt}${hashlib.sha256((salt + code).encode()).hexdigest()}"


def sms_ok(u: User, code: str, now: datetime) -> bool:
    """The code this person was sent by SMS, within its life and tries; used up when right, a try counted when
    wrong (the caller's transaction keeps both)."""
    code = code.strip()
    if u.sms_code is None or u.sms_sent_at is None or (now - u.sms_sent_at).total_seconds() > SMS_CODE_LIFE_S:
        return False
    if (u.sms_tries or 0) >= SMS_TRIES:
        return False
    salt = u.sms_code.split("$", 1)[0]
    if len(code) == 6 and code.isdigit() and hmac.compare_digest(sms_hash(code, salt), u.sms_code):
        u.sms_code, u.sms_sent_at, u.sms_tries = None, None, 0
        return True
    u.sms_tries = (u.sms_tries or 0) + 1
    return False


def recovery_hash(code: str) -> str:
    return "sha256:" + hashlib.sha256(code.strip().lower().replace("-", "").replace(" ", "").encode()).hexdigest()


def recovery_ok(s: Session, u: User, code: str, now: datetime) -> bool:
    """One of the person's unused recovery codes, used up now."""
    if len(code.strip()) <= 8:
        return False
    row = s.get(RecoveryCode, recovery_hash(code), with_for_update=True)
    if row is None or row.username != u.username or row.used_at is not None:
        return False
    row.used_at = now
    audit.append_in(s, audit.Act(u.username, "recovery_code_used", target=f"users/{u.username}"), now)
    return True


def new_recovery_codes(s: Session, username: str) -> list[str]:
    """Ten fresh recovery codes (80 random bits each, as xxxx-xxxx-xxxx-xxxx), the old ones dropped."""
    s.execute(delete(RecoveryCode).where(RecoveryCode.username == username))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
        s.add(RecoveryCode(hash=recovery_hash(codes[-1]), username=username, used_at=None))
    return codes
