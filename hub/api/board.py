"""The command-center board: the page at `/` and its files (buildless, served by the hub, no outside
fetches), its CSP reports and the display names it fetches once (`GET /api/v1/labels`); who the caller is
(`GET /api/v1/me`) is the people's resource (`hub.api.people`)."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse

from hub.api.deps import HubDep, Someone
from hub.api.errors import GUARD, responses

BOARD = Path(__file__).resolve().parent.parent / "board"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".woff2": "font/woff2", ".wav": "audio/wav"}
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\.[a-z0-9]{1,8}")
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
    if not NAME.fullmatch(name):  # a null byte, a path, a name no file system takes: no such file, not a 500
        raise HTTPException(404, "no such file")
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


@router.get("/api/v1/labels", tags=["board"], responses=responses(*GUARD, 403))
def labels(hub: HubDep, who: Someone) -> dict[str, dict[str, dict[str, str]]]:
    """Display names (zh-CN, en) by kind and code: categories, severities, states, stages, actions, levels,
    lights, tiers (built in, and the deployment's `labels:` file on top)."""
    return hub.labels.table()
