"""Browser hardening on every answer (issue 30): a strict Content-Security-Policy (scripts, styles, fonts,
sounds and connections from the hub itself only, nothing inline, no plugins; images also as data: and blob:
URLs, the enrolment's QR code and case photos), the page may not be framed (clickjacking) unless
`listen.frame_ancestors` names who may, content types are not sniffed, case links leak into no referrer, and
over TLS the browser is told to keep to https (HSTS). Violations are reported to `/api/v1/csp-report`.
Answers of the API and the operators' doors are `Cache-Control: no-store` (cases, people and contact points
stay out of browser and proxy caches) unless the route said otherwise. An error nobody caught is answered here,
a 500 with the same headers and no trace (the trace goes to the log). A pure ASGI wrapper, so streams get the
headers without being buffered."""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

REPORTS = "/api/v1/csp-report"
HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")
NO_STORE = (b"cache-control", b"no-store")
UNCACHED = ("/api/", "/metrics", "/openapi.json", "/docs", "/redoc")


def policy(frame_ancestors: list[str]) -> str:
    """The Content-Security-Policy of every answer."""
    ancestors = " ".join(frame_ancestors) or "'none'"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "font-src 'self'; media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            f"form-action 'self'; frame-ancestors {ancestors}; report-uri {REPORTS}")


class Hardening:
    def __init__(self, app: ASGIApp, *, tls: bool, frame_ancestors: list[str] | None = None) -> None:
        self.app = app
        framing = [] if frame_ancestors else [(b"x-frame-options", b"DENY")]  # (old browsers; CSP for the rest)
        self.headers = [*HEADERS, *framing, (b"content-security-policy", policy(frame_ancestors or []).encode()),
                        *([HSTS] if tls else [])]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False
        extra = [*self.headers, NO_STORE] if str(scope.get("path", "")).startswith(UNCACHED) else self.headers

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in have)]
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), str(scope.get("path"))[:200])
            if started:
                raise  # the answer is on its way: nothing to do but cut it
            body = json.dumps({"detail": "internal error; it was logged"}).encode()
            await with_headers({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
