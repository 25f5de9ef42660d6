"""The operators' doors (issue 42): `/metrics`, `/openapi.json`, `/docs` and `/redoc` answer a caller with any
key or session of the hub, or a client inside `listen.ops_networks` (a Prometheus or VictoriaMetrics scraper's
network), and nobody else: what the hub counts and every route it has are not for the internet to read.

The client is told apart as the guard does (behind `listen.trusted_proxies`, the last hop that is not one)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials

from hub.api.auth import bearer, principal
from hub.api.guard import client_address, networks


class Doors:
    """The networks let in without a key (pure)."""

    def __init__(self, nets: list[str]) -> None:
        self.nets = networks(nets)

    def open_to(self, client: str) -> bool:
        try:
            ip = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(ip in net for net in self.nets)


async def let_in(request: Request,
                 creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """A client of `listen.ops_networks`, or any caller the hub knows (401 otherwise, as every API route)."""
    doors: Doors = request.app.state.ops_doors
    client = client_address(request.client.host if request.client else "?", request.headers.get("x-forwarded-for"),
                            request.app.state.trusted_proxies)
    if not doors.open_to(client):
        await principal(request, creds)


def mount(app: FastAPI, metrics: Any) -> None:
    """The four doors on the app (made with `docs_url`, `redoc_url` and `openapi_url` off)."""
    router = APIRouter(dependencies=[Depends(let_in)], include_in_schema=False)

    @router.get("/openapi.json")
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")

    @router.get("/redoc")
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} API")

    @router.get("/metrics", response_class=PlainTextResponse)
    def metrics_() -> PlainTextResponse:
        return PlainTextResponse(metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    app.include_router(router)
