"""Who calls: a machine's API key, or a person signed in (a session token), each with a role and, for
operators and viewers, a unit whose subtree they see and act on."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.access import Principal
from hub.api.guard import MATCHED_KEY
from hub.config import ApiKey, Role
from hub.people import People, is_session_token

bearer = HTTPBearer(auto_error=False)


async def principal(request: Request,
              creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if creds is None:
        raise HTTPException(401, "missing API key (Authorization: Bearer <key>)",
                            headers={"WWW-Authenticate": "Bearer"})
    people: People = request.app.state.hub.people
    if is_session_token(creds.credentials):
        who = await run_in_threadpool(people.session, creds.credentials)
        if who is None:
            raise HTTPException(401, "signed out or session expired; sign in again",
                                headers={"WWW-Authenticate": "Bearer"})
        request.state.who = p = Principal(who.username, who.role, who.unit if who.role != "admin" else None, None,
                                          who.name)  # (the audit trail names who acted)
        return p
    k: ApiKey | None = getattr(request.state, MATCHED_KEY, None)  # matched by the guard in front
    if k is None:
        k = next((key for key in people.keys() if key.matches(creds.credentials)), None)
    if k is None:
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    request.state.who = p = Principal(k.name, k.role, k.unit if k.role in ("operator", "viewer") else None,
                                      frozenset(k.grids) if k.grids is not None else None)
    return p


def require(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that lets only these roles through (403 otherwise)."""
    async def check(p: Annotated[Principal, Depends(principal)]) -> Principal:
        if p.role not in roles:
            raise HTTPException(403, f"role {p.role} may not do this (needs {' or '.join(roles)})")
        return p
    return check
