"""The command-center board: the page at `/` and its files (buildless, served by the hub, no outside
fetches), and `GET /api/v1/me`, which tells the page who the key is and which part of the org tree it sees."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse

from hub.api.deps import HubDep, Reader, StoreDep, TzDep
from hub.api.errors import GUARD, responses
from hub.api.schemas import MeOut, UnitOut
from hub.policy import access
from hub.policy.calendar_watch import notices

BOARD = Path(__file__).resolve().parent.parent / "board"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".woff2": "font/woff2", ".wav": "audio/wav"}
router = APIRouter()
logger = logging.getLogger(__name__)
DIRECTIVES = frozenset({"script-src", "script-src-elem", "script-src-attr", "style-src", "style-src-elem",
                        "style-src-attr", "img-src", "font-src", "media-src", "connect-src", "object-src",
                        "base-uri", "form-action", "frame-ancestors", "default-src"})
_said = [0.0]


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(BOARD / "index.html", media_type=TYPES[".html"], headers={"Cache-Control": "no-cache"})


@router.get("/board/{name}", include_in_schema=False)
def asset(name: str) -> FileResponse:
    path = (BOARD / name).resolve()
    if path.parent != BOARD or path.suffix not in TYPES or not path.is_file():
        raise HTTPException(404, "no such file")
    return FileResponse(path, media_type=TYPES[path.suffix], headers={"Cache-Control": "no-cache"})


@router.post("/api/v1/csp-report", status_code=204, include_in_schema=False)
async def csp_report(request: Request, hub: HubDep) -> Response:
    """Where browsers report what the Content-Security-Policy blocked (`report-uri`): counted by directive in
    `gridwatch_hub_csp_violations_total` and logged (at most a line per 10 s). No key: the browser sends none."""
    raw = await request.body()
    try:
        report = json.loads(raw[:65536]).get("csp-report", {})
        directive = str(report.get("effective-directive") or report.get("violated-directive") or "").split(" ")[0]
    except (ValueError, AttributeError):
        return Response(status_code=204)  # not a report: nothing to count
    hub.metrics.csp_violations.labels(directive if directive in DIRECTIVES else "other").inc()
    if time.monotonic() - _said[0] >= 10.0:
        _said[0] = time.monotonic()
        logger.warning("the browser blocked %s under %s on %s", str(report.get("blocked-uri"))[:200], directive,
                       str(report.get("document-uri"))[:200])
    return Response(status_code=204)


@router.get("/api/v1/me", tags=["board"], responses=responses(*GUARD, 403))
def me(request: Request, store: StoreDep, hub: HubDep, who: Reader, tz: TzDep) -> MeOut:
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
                 if who.role == "admin" else [],
                 csrf=getattr(request.state, "csrf", None), limited=who.limited,
                 two_factor=who.person is not None and hub.people.two_factor(who.name)[0])


@router.get("/api/v1/labels", tags=["board"], responses=responses(*GUARD, 403))
def labels(hub: HubDep, who: Reader) -> dict[str, dict[str, dict[str, str]]]:
    """Display names (zh-CN, en) by kind and code: categories, severities, states, stages, actions, levels,
    lights, tiers (built in, and the deployment's `labels:` file on top)."""
    return hub.labels.table()
