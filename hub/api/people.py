"""People and keys over the API: signing in and out, the administrator's accounts and machine keys (no
restart needed), and `GET /me`: who the caller is and which part of the org tree it sees (the board's first
question).

Signing in answers a session token that is used like a key (`Authorization: Bearer gws_…`), or, asked with
`"cookie": true` (the board), sets it in an HttpOnly cookie and answers only the CSRF value the page sends back
with its changes (hub.api.auth). Wrong names or passwords count against the client like wrong keys (429 after
`limits.auth_failures`, the client told apart behind `listen.trusted_proxies` as the guard does), and wrong
passwords and codes against the account too (locked after `limits.account_failures` in a row, from any
addresses; `POST /users/{u}/unlock` lifts it). Roles in `sign_in.two_factor` give a TOTP code (or a recovery
code) with the password once enrolled; `/me/two-factor` enrols (a QR code for the authenticator app)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import segno
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from hub.api.audited import audited
from hub.api.auth import COOKIE, Principal, bearer, credentials, csrf_token, require
from hub.api.deps import HubDep, Someone, StoreDep, TzDep
from hub.api.errors import BODY, GUARD, Refused, responses
from hub.api.guard import client_address
from hub.api.schemas import MeOut, Text, UnitOut
from hub.api.seen import refused, refusing
from hub.config import ADMINS
from hub.people.accounts import Login, People, Person, is_session_token
from hub.people.model import PersonRole
from hub.policy import access
from hub.policy.calendar_watch import notices
from hub.policy.errors import Conflict

router = APIRouter(prefix="/api/v1", tags=["people"])
Security = Annotated[Principal, Depends(require("secadmin", "admin"))]
Administering = Annotated[Principal, Depends(require("sysadmin", "secadmin", "admin"))]
"""Reading the accounts, and keeping them (`_may_manage` says whose)."""
"""Keys, lockouts, second factors: the security administrator (and a machine's admin key)."""
USERNAME = r"^[A-Za-z0-9_.@-]{1,64}$"


class PersonOut(BaseModel):
    username: str
    name: str
    unit: str | None
    role: str
    disabled: bool
    locked_until: datetime | None = Field(None, description="wrong passwords locked the account until then "
                                                            "(an administrator may unlock it)")
    two_factor: bool = Field(False, description="a second factor (TOTP) is enrolled")
    removed: bool = Field(False, description="the account was removed (its contact points erased)")


def _out(p: Person) -> PersonOut:
    return PersonOut(username=p.username, name=p.name, unit=p.unit, role=p.role, disabled=p.disabled,
                     locked_until=p.locked_until, two_factor=p.two_factor, removed=p.removed)


class LoginBody(BaseModel):
    username: str | None = Field(None, max_length=64)
    password: str | None = Field(None, max_length=256)
    code: str | None = Field(None, max_length=64, description="the authenticator's 6-digit code, or a recovery code")
    key: str | None = Field(None, max_length=256, description="instead of a name and password: a key, signed in "
                                                               "on the board (not an edge key)")
    cookie: bool = Field(False, description="hold the session in an HttpOnly cookie (the board) instead of "
                                            "answering the token")


class LoginOut(BaseModel):
    token: str | None = Field(None, description="use as `Authorization: Bearer <token>` until `expires_at` "
                                                "(null when the session is in the cookie)")
    csrf: str | None = Field(None, description="with the cookie: send as X-CSRF-Token with every change")
    expires_at: datetime
    user: PersonOut | None = None
    key: str | None = Field(None, description="the key's name, when a key signed in")
    limited: Literal["two_factor", "password"] | None = Field(
        None, description="the session reaches nothing but enrolling a second factor (two_factor) or changing "
                          "the expired password (password) until that is done")


def _people(request: Request) -> People:
    people: People = request.app.state.hub.people
    return people


@router.post("/login", responses=responses(401, 422, 429), openapi_extra=audited("sign_in"))
async def login(body: LoginBody, request: Request, response: Response) -> LoginOut:
    """Sign in with a name and password (and the second factor's code once enrolled), or a key on the board:
    a session for the board (or any API client)."""
    limiter = request.app.state.auth_limiter
    client = client_address((request.client.host if request.client else "?"), request.headers.get("x-forwarded-for"),
                            request.app.state.trusted_proxies)
    request.state.audit = {"actor": body.username or "key"}  # the name signed in with, whatever the outcome
    wait = limiter.blocked_for(client)
    if wait > 0:
        raise HTTPException(429, "too many failed sign-ins; try again later", headers={"Retry-After": f"{wait:.0f}"})
    people = _people(request)
    got: Login | str | None
    if body.key is not None:
        got = await run_in_threadpool(people.key_login, body.key, client)
    elif body.username is not None and body.password is not None:
        got = await run_in_threadpool(people.login, body.username, body.password, body.code)
    else:
        raise Refused(422, "sign in with a username and password, or a key", "bad_login")
    if got == "code":
        raise Refused(401, "the second factor's code is needed: 请输入动态口令", "code_required", method="totp")
    if got == "sms":
        raise Refused(401, "a code was sent by SMS to the mobile number on record: 短信验证码已发送", "code_required",
                      method="sms")
    if not isinstance(got, Login):
        limiter.failed(client)
        request.app.state.hub.metrics.auth_failures.inc()
        if got == "wrong_code":
            raise Refused(401, "wrong or already used code", "wrong_code")
        raise HTTPException(401, "wrong name or password (or key), or the account is disabled or locked")
    if got.key is not None:
        request.state.audit = {"actor": f"key:{got.key.name}"}
    if got.limited is not None:
        request.state.audit["limited"] = got.limited
    out = LoginOut(token=None if body.cookie else got.token, expires_at=got.expires,
                   user=_out(got.person) if got.person is not None else None,
                   key=got.key.name if got.key is not None else None, limited=got.limited)  # type: ignore[arg-type]
    if body.cookie:
        response.set_cookie(COOKIE, got.token, httponly=True, samesite="strict", path="/api/",
                            secure=request.url.scheme == "https"  # TLS here, or at the proxy in front
                            or request.headers.get("x-forwarded-proto") == "https")
        out.csrf = csrf_token(got.token)
    return out


@router.post("/logout", status_code=204, responses=responses(*GUARD), openapi_extra=audited("sign_out"))
async def logout(request: Request,
                 creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Response:
    """End this session, and clear the board's cookie (a key is not a session: nothing happens to it)."""
    got = credentials(request, creds)
    if got is not None and is_session_token(got[0]):
        signed = await run_in_threadpool(_people(request).session, got[0])
        if signed is not None:
            request.state.audit = {"actor": signed.person.username if signed.person else f"key:{signed.key.name}"
                                   if signed.key else "?"}
        await run_in_threadpool(_people(request).logout, got[0])
    out = Response(status_code=204)
    out.delete_cookie(COOKIE, path="/api/", httponly=True, samesite="strict")
    return out


# ---- one's own account: the second factor, the password ---------------------------------------------
class Enrolment(BaseModel):
    uri: str = Field(description="otpauth:// URI for an authenticator app")
    secret: str = Field(description="the same secret, to type in by hand")
    qr: str = Field(description="the URI as a QR code (an SVG data: URI)")


class Code(BaseModel):
    code: str = Field(max_length=16, description="the authenticator's current 6-digit code")


class RecoveryOut(BaseModel):
    recovery_codes: list[str] = Field(description="shown this once: each signs in once in place of a code")


class PasswordChange(BaseModel):
    old: str = Field(max_length=256)
    new: str = Field(min_length=1, max_length=256)


def _me(who: Principal) -> str:
    if who.person is None:
        raise Refused(409, "a key has no second factor or password of its own", "not_person")
    return who.name


def _token(request: Request, creds: HTTPAuthorizationCredentials | None) -> str | None:
    got = credentials(request, creds)
    return got[0] if got is not None and is_session_token(got[0]) else None


Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@router.post("/me/two-factor", responses=responses(*GUARD, 403, 409), openapi_extra=audited("two_factor_begun"))
def begin_two_factor(request: Request, who: Someone) -> Enrolment:
    """Begin enrolling a second factor: a new secret, as a QR code for an authenticator app (微信/支付宝/
    Google/Microsoft Authenticator…); it counts once `/me/two-factor/confirm` gets a code from it."""
    with refusing("no such user"):
        uri = _people(request).begin_totp(_me(who))
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=4, dark="#000", light="#fff")
    secret = uri.split("secret=", 1)[1].split("&", 1)[0]
    return Enrolment(uri=uri, secret=secret, qr=qr)


@router.post("/me/two-factor/confirm", responses=responses(*GUARD, *BODY, 403, 409),
             openapi_extra=audited("two_factor_enrolled"))
def confirm_two_factor(body: Code, request: Request, who: Someone, creds: Creds) -> RecoveryOut:
    """A code from the new secret: the second factor is enrolled, this session is freed of its limit, and
    ten recovery codes are answered (this once)."""
    people = _people(request)
    with refusing("no such user"):
        codes = people.confirm_totp(_me(who), body.code)
    token = _token(request, creds)
    if token is not None:
        people.lift(token, "two_factor")
    return RecoveryOut(recovery_codes=codes)


@router.post("/me/two-factor/recovery", responses=responses(*GUARD, 403, 409),
             openapi_extra=audited("recovery_codes_renewed"))
def new_recovery_codes(request: Request, who: Someone) -> RecoveryOut:
    """Ten new recovery codes; the old ones stop working."""
    with refusing("no such user"):
        return RecoveryOut(recovery_codes=_people(request).new_recovery(_me(who)))


@router.post("/me/password", responses=responses(*GUARD, *BODY, 403, 409, 429),
             openapi_extra=audited("password_changed"))
def change_own_password(body: PasswordChange, request: Request, who: Someone, creds: Creds) -> PersonOut:
    """Change one's own password (the current one proves it): other sessions end; this one goes on. A wrong
    current password counts as a wrong sign-in, against the client (429) and the account (locked)."""
    limiter = request.app.state.auth_limiter
    client = client_address((request.client.host if request.client else "?"), request.headers.get("x-forwarded-for"),
                            request.app.state.trusted_proxies)
    wait = limiter.blocked_for(client)
    if wait > 0:
        raise HTTPException(429, "too many wrong passwords; try again later", headers={"Retry-After": f"{wait:.0f}"})
    try:
        with refusing("no such user"):
            return _out(_people(request).change_password(_me(who), body.old, body.new, _token(request, creds)))
    except HTTPException as e:
        if getattr(e, "code", None) in ("wrong_password", "locked"):
            limiter.failed(client)
            request.app.state.hub.metrics.auth_failures.inc()
        raise


class NewPerson(BaseModel):
    username: str = Field(pattern=USERNAME)
    name: Text = Field(min_length=1, max_length=128)
    unit: str | None = Field(None, max_length=64, description="the unit they work for; none only for admins")
    role: PersonRole
    password: str = Field(min_length=1, max_length=256)


class PersonChange(BaseModel):
    name: Text | None = Field(None, min_length=1, max_length=128)
    unit: str | None = Field(None, max_length=64)
    role: PersonRole | None = None
    password: str | None = Field(None, min_length=1, max_length=256)
    disabled: bool | None = None


@router.get("/users", responses=responses(*GUARD, 403))
def list_users(request: Request, who: Administering) -> list[PersonOut]:
    return [_out(p) for p in _people(request).everyone()]


def _may_manage(request: Request, who: Principal, *roles: str | None) -> None:
    """三权分立: the system administrator keeps the accounts of staff (operators, viewers); accounts of the
    administrators themselves (or a role made or taken away from one) are the security administrator's, so
    the system administrator cannot make itself an auditor, nor an auditor of anyone's choosing."""
    admin_class = any(r in ADMINS for r in roles)
    allowed = ("secadmin", "admin") if admin_class else ("sysadmin", "admin")
    if who.role not in allowed:
        raise Refused(403, f"role {who.role} may not do this (needs {' or '.join(allowed)})", "separation",
                      needs=list(allowed))


def _role_of(request: Request, username: str) -> str | None:
    p = next((p for p in _people(request).everyone() if p.username == username), None)
    return p.role if p is not None else None


@router.post("/users", status_code=201, responses=responses(*GUARD, *BODY, 403, 409),
             openapi_extra=audited("user_added"))
def add_user(body: NewPerson, request: Request, who: Administering) -> PersonOut:
    """A new account (an administrator's act; no restart)."""
    _may_manage(request, who, body.role)
    with refusing():
        return _out(_people(request).add(body.username, body.name, body.unit, body.role, body.password))


@router.patch("/users/{username}", responses=responses(*GUARD, *BODY, 403, 404, 409),
              openapi_extra=audited("user_changed"))
def change_user(username: str, body: PersonChange, request: Request, who: Administering) -> PersonOut:
    """Change a name, unit, role or password, or disable an account; a change of unit, role or password, and
    disabling, end the person's sessions at once."""
    _may_manage(request, who, _role_of(request, username), body.role)
    if username == who.name and body.disabled:
        raise Refused(409, "an administrator cannot disable their own account", "self", username=username)
    with refusing("no such user"):
        return _out(_people(request).change(username, name=body.name, unit=body.unit, role=body.role,
                                            password=body.password, disabled=body.disabled))


@router.delete("/users/{username}", responses=responses(*GUARD, 403, 404, 409), openapi_extra=audited("user_removed"))
def remove_user(username: str, request: Request, who: Administering) -> PersonOut:
    """Remove an account: it can no longer sign in, and the person's contact points, second factor and
    sessions are erased (个人信息删除); their name stays on the records of what they did."""
    _may_manage(request, who, _role_of(request, username))
    if username == who.name:
        raise Refused(409, "an administrator cannot remove their own account", "self", username=username)
    with refusing("no such user"):
        return _out(_people(request).remove(username))


@router.delete("/users/{username}/two-factor", responses=responses(*GUARD, 403, 404),
               openapi_extra=audited("two_factor_reset"))
def reset_two_factor(username: str, request: Request, who: Security) -> PersonOut:
    """Remove a person's second factor (a lost phone): they enrol again at their next sign-in."""
    with refusing("no such user"):
        return _out(_people(request).drop_totp(username))


@router.post("/users/{username}/unlock", responses=responses(*GUARD, 403, 404), openapi_extra=audited("user_unlocked"))
def unlock_user(username: str, request: Request, who: Security) -> PersonOut:
    """Lift a lock that wrong passwords put on an account, and clear its count."""
    with refusing("no such user"):
        return _out(_people(request).unlock(username))


class KeyOut(BaseModel):
    name: str
    role: str
    unit: str | None
    grids: list[str] | None
    sources: list[str] | None = None
    source: Literal["file", "api"]
    created_at: datetime | None = None
    disabled_at: datetime | None = None


class NewKey(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    role: Literal["edge", "operator", "viewer", "admin"]
    unit: str | None = Field(None, max_length=64)
    grids: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=10_000)
    sources: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None, max_length=100, description="addresses or networks it may be used from; none = any")


class KeyMade(BaseModel):
    name: str
    key: str = Field(description="shown once; only its hash is kept")


@router.get("/keys", responses=responses(*GUARD, 403))
def list_keys(request: Request, who: Security) -> list[KeyOut]:
    people = _people(request)
    out = [KeyOut(name=k.name, role=k.role, unit=k.unit, grids=k.grids, sources=k.sources, source="file")
           for k in people.file_keys]
    out += [KeyOut(name=r.name, role=r.role, unit=r.unit, grids=r.grids, sources=r.sources, source="api",
                   created_at=r.created_at, disabled_at=r.disabled_at) for r in people.key_rows()]
    return out


@router.post("/keys", status_code=201, responses=responses(*GUARD, *BODY, 403, 409), openapi_extra=audited("key_added"))
def add_key(body: NewKey, request: Request, who: Security) -> KeyMade:
    """A key for a machine (an edge agent, an integration), live at once."""
    try:
        key = _people(request).add_key(body.name, body.role, body.unit, body.grids, who.name, body.sources)
    except Conflict as exc:
        raise refused(exc) from None
    except ValueError as exc:  # the key's own rules (a unit for operators and viewers, grids for edge keys)
        raise Refused(409, str(exc).splitlines()[-1], "bad_key", name=body.name) from None
    return KeyMade(name=body.name, key=key)


@router.delete("/keys/{name}", status_code=204, responses=responses(*GUARD, 403, 404),
               openapi_extra=audited("key_disabled"))
def disable_key(name: str, request: Request, who: Security) -> Response:
    """Withdraw a key added through the API (hub.yaml's keys change with the file)."""
    if not _people(request).disable_key(name):
        raise HTTPException(404, "no such key added through the API")
    return Response(status_code=204)


@router.get("/me", responses=responses(*GUARD, 403))
def me(request: Request, store: StoreDep, hub: HubDep, who: Someone, tz: TzDep) -> MeOut:
    """The key's name, role and unit, the hub's time zone, and the org units it sees (a tree by parent)."""
    scope = access.scope(store.org, who)
    units = [UnitOut(id=u.id, name=u.name or u.id, level=u.level, parent=u.parent)
             for u in store.org.units.values() if scope is None or u.id in scope]
    seen = {u.id for u in units}
    above = set(store.org.chain(who.unit)) if who.unit is not None and who.unit in store.org.units else set()
    shared = [UnitOut(id=u.id, name=u.name or u.id, level=u.level, parent=u.parent) for u in store.org.departments()
              if u.parent in above and u.id not in seen]  # 派单 may go to the departments of the levels above
    return MeOut(name=who.name, person=who.person, role=who.role, unit=who.unit, tz=tz, units=units,
                 dispatch_to=[u for u in units if u.level in ("grid", "department")] + shared,
                 can_act=who.role in ("operator", "admin"),
                 notices=[n.text for n in notices(store.calendars, store.sla, store.today())]
                 if who.role in ("admin", "sysadmin") else [],
                 csrf=getattr(request.state, "csrf", None), limited=who.limited,
                 two_factor=who.person is not None and hub.people.two_factor(who.name)[0])
