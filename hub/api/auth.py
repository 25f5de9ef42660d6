"""API keys with a role and, for operators and viewers, a unit whose subtree they see and act on."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.api.guard import MATCHED_KEY
from hub.config import ApiKey, Role
from hub.store import Scope, Store

bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    unit: str | None  # None: the whole tree (edge, admin)
    grids: frozenset[str] | None = None  # edge keys: the grids they may send alerts for; None = all


async def principal(request: Request,
              creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if creds is None:
        raise HTTPException(401, "missing API key (Authorization: Bearer <key>)",
                            headers={"WWW-Authenticate": "Bearer"})
    k: ApiKey | None = getattr(request.state, MATCHED_KEY, None)  # matched by the guard in front
    if k is None:
        keys: list[ApiKey] = request.app.state.hub.keys
        k = next((key for key in keys if key.matches(creds.credentials)), None)
    if k is None:
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return Principal(k.name, k.role, k.unit if k.role in ("operator", "viewer") else None,
                     frozenset(k.grids) if k.grids is not None else None)


READERS: tuple[Role, ...] = ("operator", "viewer", "admin")  # edge keys only send alerts


def scope_of(store: Store, who: Principal) -> Scope:
    """The units whose cases the caller sees; None = the whole tree (also for a unit at the top of it: no
    `owner IN (...) OR grid IN (...)` clause then, which would keep the database from reading cases in id
    order and make every page of a long walk scan them all)."""
    if not who.unit:
        return None
    scope = store.org.subtree(who.unit)
    return None if len(scope) == len(store.org.units) else scope


def require(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that lets only these roles through (403 otherwise)."""
    async def check(p: Annotated[Principal, Depends(principal)]) -> Principal:
        if p.role not in roles:
            raise HTTPException(403, f"role {p.role} may not do this (needs {' or '.join(roles)})")
        return p
    return check
