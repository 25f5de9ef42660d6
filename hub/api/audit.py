"""The audit trail over the API (`hub.audit.trail`): a middleware that records the security-relevant requests as
they end, and `GET /api/v1/audit` for administrators (filters; `format=csv` exports).

Recorded: what each route declares in its decorator (`openapi_extra=audited("user_added")`, `hub.api.audited`;
no table of paths to keep in step): sign-in and sign-out (the name signed in with, the outcome), accounts,
unlocks, contact points, keys, the rule file saved and deployed, maintenance windows, the device registry,
exports (with their query and the row count the route reports), and every 403 whatever the path. Case
actions are not: each case's timeline records them with their actor already. The middleware reads the
principal the route resolved (`request.state.who`) and what the route adds (`request.state.audit`); a failure
to record is logged and counted, and does not change the answer (the act has happened by then)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from hub.api.audited import KEY, NONE, TIMELINE, audited
from hub.api.auth import Principal, require
from hub.api.errors import GUARD, responses
from hub.api.guard import client_address
from hub.audit import trail as audit

logger = logging.getLogger(__name__)
T = TypeVar("T")
router = APIRouter(prefix="/api/v1", tags=["audit"])
Admin = Annotated[Principal, Depends(require("admin", "auditor"))]
"""The trail is the audit administrator's to read and export (三权分立: nobody who keeps accounts or keys), and a
machine's admin key's."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

def classify(route: Any, status: int) -> str | None:
    """The audit action of a request: what its route declares (`hub.api.audited`), else `permission_refused`
    for any 403, else None."""
    extra = getattr(route, "openapi_extra", None) or {}
    action = extra.get(KEY)
    if action not in (None, TIMELINE, NONE):
        return str(action)
    return "permission_refused" if status == 403 else None


def outcome(status: int) -> audit.Outcome:
    return "ok" if status < 400 else "refused" if status in (401, 403, 409, 429) else "failed"


class AuditTrail:
    """ASGI middleware: after an audited request is answered, one record (in a worker thread)."""

    def __init__(self, app: ASGIApp, proxies: list[Any]) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/api/v1/"):
            await self.app(scope, receive, send)
            return
        status = 0

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            action = classify(scope.get("route"), status) if status else None
            if action is not None:
                await run_in_threadpool(self._record, scope, action, status)

    def _record(self, scope: Scope, action: str, status: int) -> None:
        state = scope.get("state") or {}
        who: Principal | None = state.get("who")
        said: dict[str, Any] = dict(state.get("audit") or {})
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        peer = (scope.get("client") or ("?", 0))[0]
        detail: dict[str, Any] = {"method": scope["method"], "path": scope["path"], "status": status}
        if scope.get("query_string"):
            detail["query"] = scope["query_string"].decode("latin-1")[:1000]
        actor = str(said.pop("actor", None) or (who.name if who is not None else "anonymous"))
        detail |= said
        path = str(scope["path"])
        target = path.removeprefix("/api/v1/")
        app = scope.get("app")
        try:
            audit.append(app.state.hub.store, audit.Act(  # type: ignore[union-attr]
                actor=actor, role=who.role if who is not None else None,
                address=client_address(peer, headers.get("x-forwarded-for"), self.proxies),
                action=action, target=target, outcome=outcome(status), detail=detail))
        except Exception:  # noqa: BLE001 - the act happened; not recording it is logged and counted
            logger.exception("audit: could not record %s %s", action, target)
            if app is not None:
                app.state.hub.metrics.audit_failures.inc()


def counted(request: Request, rows: Iterable[T]) -> Iterator[T]:
    """An export's rows, counted into what the audit records of the request as they are written."""
    said: dict[str, Any] = {"rows": 0}
    request.state.audit = said
    for row in rows:
        said["rows"] += 1
        yield row


class AuditOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    role: str | None
    address: str | None
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]
    hash: str


FIELDS = ("seq", "at", "actor", "role", "address", "action", "target", "outcome", "detail", "hash")


@router.get("/audit", response_model=list[AuditOut], responses={
    **responses(*GUARD, 403), 200: {"content": {"text/csv": {}}, "description": "the records (format=csv: a sheet)"}},
            openapi_extra=audited("audit_read"))
async def audit_list(request: Request, who: Admin, actor: str | None = None, action: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
                     format: Annotated[str, Query(pattern="^(json|csv)$")] = "json") -> Any:
    """The audit trail, newest first (administrators). `format=csv` downloads it (itself an audited export)."""
    rows = await run_in_threadpool(audit.listing, request.app.state.hub.store, actor=actor, action=action,
                                   since=since, until=until, limit=limit)
    out = [AuditOut(seq=r.seq, at=r.at, actor=r.actor, role=r.role, address=r.address, action=r.action,
                    target=r.target, outcome=r.outcome, detail=r.detail, hash=r.hash) for r in rows]
    if format == "json":
        return out
    request.state.audit = {"rows": len(out)}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(FIELDS)
    for o in out:
        w.writerow([getattr(o, f) for f in FIELDS])
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": "attachment; filename=audit.csv"})
