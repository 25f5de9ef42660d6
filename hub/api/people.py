"""People and keys over the API: signing in and out, the administrator's accounts and machine keys (no
restart needed), and assigning a case to a person of the unit that holds it (网格员).

Signing in answers a session token that is used like a key (`Authorization: Bearer gws_…`). Wrong names or
passwords count against the client like wrong keys (429 after `limits.auth_failures`, the client told apart
behind `listen.trusted_proxies` as the guard does), and wrong passwords against the account too (locked
after `limits.account_failures` in a row, from any addresses; `POST /users/{u}/unlock` lifts it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from hub import actions
from hub.api.auth import Principal, bearer, require
from hub.api.deps import HubDep, Operator, StoreDep
from hub.api.errors import BODY, GUARD, Refused, responses
from hub.api.guard import client_address
from hub.api.schemas import CaseDetail, Text
from hub.api.seen import actionable, load_visible, refused, refusing
from hub.errors import Conflict
from hub.people import People, Person, is_session_token

router = APIRouter(prefix="/api/v1", tags=["people"])
Admin = Annotated[Principal, Depends(require("admin"))]
USERNAME = r"^[A-Za-z0-9_.@-]{1,64}$"


class PersonOut(BaseModel):
    username: str
    name: str
    unit: str | None
    role: str
    disabled: bool
    locked_until: datetime | None = Field(None, description="wrong passwords locked the account until then "
                                                            "(an administrator may unlock it)")


def _out(p: Person) -> PersonOut:
    return PersonOut(username=p.username, name=p.name, unit=p.unit, role=p.role, disabled=p.disabled,
                     locked_until=p.locked_until)


class LoginBody(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class LoginOut(BaseModel):
    token: str = Field(description="use as `Authorization: Bearer <token>` until `expires_at`")
    expires_at: datetime
    user: PersonOut


def _people(request: Request) -> People:
    people: People = request.app.state.hub.people
    return people


@router.post("/login", responses=responses(401, 429))
async def login(body: LoginBody, request: Request) -> LoginOut:
    """Sign in with a name and password: a session for the board (or any API client)."""
    limiter = request.app.state.auth_limiter
    client = client_address((request.client.host if request.client else "?"), request.headers.get("x-forwarded-for"),
                            request.app.state.trusted_proxies)
    request.state.audit = {"actor": body.username}  # the name signed in with, whatever the outcome
    wait = limiter.blocked_for(client)
    if wait > 0:
        raise HTTPException(429, "too many failed sign-ins; try again later", headers={"Retry-After": f"{wait:.0f}"})
    got = await run_in_threadpool(_people(request).login, body.username, body.password)
    if got is None:
        limiter.failed(client)
        request.app.state.hub.metrics.auth_failures.inc()
        raise HTTPException(401, "wrong name or password, or the account is disabled or locked")
    token, person, expires = got
    return LoginOut(token=token, expires_at=expires, user=_out(person))


@router.post("/logout", status_code=204, responses=responses(*GUARD))
async def logout(request: Request,
                 creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Response:
    """End this session (a key is not a session: nothing happens to it)."""
    if creds is not None and is_session_token(creds.credentials):
        who = await run_in_threadpool(_people(request).session, creds.credentials)
        if who is not None:
            request.state.audit = {"actor": who.username}
        await run_in_threadpool(_people(request).logout, creds.credentials)
    return Response(status_code=204)


class NewPerson(BaseModel):
    username: str = Field(pattern=USERNAME)
    name: Text = Field(min_length=1, max_length=128)
    unit: str | None = Field(None, max_length=64, description="the unit they work for; none only for admins")
    role: Literal["operator", "viewer", "admin"]
    password: str = Field(min_length=1, max_length=256)


class PersonChange(BaseModel):
    name: Text | None = Field(None, min_length=1, max_length=128)
    unit: str | None = Field(None, max_length=64)
    role: Literal["operator", "viewer", "admin"] | None = None
    password: str | None = Field(None, min_length=1, max_length=256)
    disabled: bool | None = None


@router.get("/users", responses=responses(*GUARD, 403))
def list_users(request: Request, who: Admin) -> list[PersonOut]:
    return [_out(p) for p in _people(request).everyone()]


@router.post("/users", status_code=201, responses=responses(*GUARD, *BODY, 403, 409))
def add_user(body: NewPerson, request: Request, who: Admin) -> PersonOut:
    """A new account (an administrator's act; no restart)."""
    with refusing():
        return _out(_people(request).add(body.username, body.name, body.unit, body.role, body.password))


@router.patch("/users/{username}", responses=responses(*GUARD, *BODY, 403, 404, 409))
def change_user(username: str, body: PersonChange, request: Request, who: Admin) -> PersonOut:
    """Change a name, unit, role or password, or disable an account; a change of unit, role or password, and
    disabling, end the person's sessions at once."""
    if username == who.name and body.disabled:
        raise Refused(409, "an administrator cannot disable their own account", "self", username=username)
    with refusing("no such user"):
        return _out(_people(request).change(username, name=body.name, unit=body.unit, role=body.role,
                                            password=body.password, disabled=body.disabled))


@router.post("/users/{username}/unlock", responses=responses(*GUARD, 403, 404))
def unlock_user(username: str, request: Request, who: Admin) -> PersonOut:
    """Lift a lock that wrong passwords put on an account, and clear its count."""
    with refusing("no such user"):
        return _out(_people(request).unlock(username))


class KeyOut(BaseModel):
    name: str
    role: str
    unit: str | None
    grids: list[str] | None
    source: Literal["file", "api"]
    created_at: datetime | None = None
    disabled_at: datetime | None = None


class NewKey(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    role: Literal["edge", "operator", "viewer", "admin"]
    unit: str | None = Field(None, max_length=64)
    grids: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=10_000)


class KeyMade(BaseModel):
    name: str
    key: str = Field(description="shown once; only its hash is kept")


@router.get("/keys", responses=responses(*GUARD, 403))
def list_keys(request: Request, who: Admin) -> list[KeyOut]:
    people = _people(request)
    out = [KeyOut(name=k.name, role=k.role, unit=k.unit, grids=k.grids, source="file") for k in people.file_keys]
    out += [KeyOut(name=r.name, role=r.role, unit=r.unit, grids=r.grids, source="api", created_at=r.created_at,
                   disabled_at=r.disabled_at) for r in people.key_rows()]
    return out


@router.post("/keys", status_code=201, responses=responses(*GUARD, *BODY, 403, 409))
def add_key(body: NewKey, request: Request, who: Admin) -> KeyMade:
    """A key for a machine (an edge agent, an integration), live at once."""
    try:
        key = _people(request).add_key(body.name, body.role, body.unit, body.grids, who.name)
    except Conflict as exc:
        raise refused(exc) from None
    except ValueError as exc:  # the key's own rules (a unit for operators and viewers, grids for edge keys)
        raise Refused(409, str(exc).splitlines()[-1], "bad_key", name=body.name) from None
    return KeyMade(name=body.name, key=key)


@router.delete("/keys/{name}", status_code=204, responses=responses(*GUARD, 403, 404))
def disable_key(name: str, request: Request, who: Admin) -> Response:
    """Withdraw a key added through the API (hub.yaml's keys change with the file)."""
    if not _people(request).disable_key(name):
        raise HTTPException(404, "no such key added through the API")
    return Response(status_code=204)


class AssignBody(BaseModel):
    username: str = Field(pattern=USERNAME)
    note: Text | None = Field(None, max_length=4000)


@router.post("/cases/{case_id}/assign", responses=responses(*GUARD, *BODY, 403, 404, 409))
def assign(case_id: str, body: AssignBody, store: StoreDep, hub: HubDep, who: Operator) -> CaseDetail:
    """Give a case to a person of the unit that holds it (a 网格员 of the grid), by whoever holds it."""
    case, _ = actionable(store, who, case_id)
    person = hub.people.get(body.username)
    if person is None or person.disabled or person.unit != case.owner:
        raise Refused(409, f"{body.username} is not an active member of {case.owner}", "not_member",
                      username=body.username, unit=case.owner)
    with refusing():
        actions.assign(store, case_id, username=person.username, name=person.name, actor=who.name,
                       person=who.person, note=body.note)
    return load_visible(store, who, case_id)
