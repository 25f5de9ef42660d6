"""Who calls: a machine's API key, or a session (a person signed in, or a key signed in on the board), each
with a role and, for operators and viewers, a unit whose subtree they see and act on.

A session comes in the `Authorization: Bearer gws_…` header (API clients) or in the board's cookie
`gw_session` (HttpOnly, SameSite=Strict, Secure over TLS: no script in the page can read it). A request that
changes anything on the strength of the cookie must also carry `X-CSRF-Token`, a value derived from the
session that the page is given at sign-in and by `GET /api/v1/me` (a cross-site page can neither read it nor
send the header without a CORS preflight the hub never grants). A session limited to enrolling a second factor
or changing an expired password reaches only that (`LIMITED_PATHS`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.api.errors import Refused
from hub.api.guard import MATCHED_KEY, client_address
from hub.config import ADMINS, ApiKey, Role
from hub.people.accounts import People, is_session_token
from hub.policy.access import Principal

bearer = HTTPBearer(auto_error=False)
COOKIE = "gw_session"
CSRF_HEADER = "x-csrf-token"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
LIMITED_PATHS = frozenset({"/api/v1/me", "/api/v1/labels", "/api/v1/logout", "/api/v1/me/password",
                           "/api/v1/me/two-factor", "/api/v1/me/two-factor/confirm"})
LIMITS = {"two_factor": "enrol a second factor (TOTP) first: 先绑定动态口令",
          "password": "the password has expired: change it first: 密码已过期，请先修改"}


def csrf_token(session: str) -> str:
    """The CSRF value of a session: derived from it, so nothing more is stored and it dies with it."""
    return hashlib.sha256(b"gridwatch-csrf:" + session.encode()).hexdigest()[:40]


def credentials(request: Request, creds: HTTPAuthorizationCredentials | None) -> tuple[str, bool] | None:
    """The credential of a request and whether it came in the cookie."""
    if creds is not None:
        return creds.credentials, False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else None


async def principal(request: Request,
                    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    got = credentials(request, creds)
    if got is None:
        raise HTTPException(401, "missing API key (Authorization: Bearer <key>) or session",
                            headers={"WWW-Authenticate": "Bearer"})
    token, from_cookie = got
    people: People = request.app.state.hub.people
    if is_session_token(token):
        signed = await run_in_threadpool(people.session, token)
        if signed is None:
            raise HTTPException(401, "signed out or session expired; sign in again",
                                headers={"WWW-Authenticate": "Bearer"})
        if from_cookie:
            if request.method not in SAFE and not hmac.compare_digest(
                    request.headers.get(CSRF_HEADER, "").encode(), csrf_token(token).encode()):
                raise Refused(403, "a change made with the board's session needs its X-CSRF-Token header",
                              "csrf")
            request.state.csrf = csrf_token(token)
        if signed.person is not None:
            who = signed.person
            p = Principal(who.username, who.role, who.unit if who.role not in ADMINS else None, None, who.name,
                          signed.limited)
        else:
            assert signed.key is not None
            p = _key_principal(signed.key)
        request.state.who = p  # (the audit trail names who acted)
        if p.limited is not None and request.url.path not in LIMITED_PATHS:
            raise Refused(403, LIMITS[p.limited], f"limited_{p.limited}")
        return p
    k: ApiKey | None = getattr(request.state, MATCHED_KEY, None)  # matched by the guard in front
    if k is None:
        k = next((key for key in people.keys() if key.matches(token)), None)
        if k is not None and not k.allows(client_address(
                request.client.host if request.client else "?", request.headers.get("x-forwarded-for"),
                request.app.state.trusted_proxies)):
            k = None
    if k is None:
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    request.state.who = p = _key_principal(k)
    return p


def _key_principal(k: ApiKey) -> Principal:
    return Principal(k.name, k.role, k.unit if k.role in ("operator", "viewer") else None,
                     frozenset(k.grids) if k.grids is not None else None)


def require(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that lets only these roles through (403 otherwise)."""
    async def check(p: Annotated[Principal, Depends(principal)]) -> Principal:
        if p.role not in roles:
            raise HTTPException(403, f"role {p.role} may not do this (needs {' or '.join(roles)})")
        return p
    return check
