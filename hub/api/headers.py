"""Browser hardening on every answer (issue 30): a strict Content-Security-Policy (scripts, styles, fonts,
sounds and connections from the hub itself only, nothing inline, no plugins; images also as data: and blob:
URLs, the enrolment's QR code and case photos), the page may not be framed (clickjacking) unless
`listen.frame_ancestors` names who may, content types are not sniffed, case links leak into no referrer, and
over TLS the browser is told to keep to https (HSTS). Violations are reported to `/api/v1/csp-report`.
A pure ASGI wrapper, so streams get the headers without being buffered."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REPORTS = "/api/v1/csp-report"
HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")


def policy(frame_ancestors: list[str]) -> str:
    """The Content-Security-Policy of every answer."""
    ancestors = " ".join(frame_ancestors) or "'none'"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "font-src 'self'; media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
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

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in self.headers if h[0] not in have)]
            await send(message)

        await self.app(scope, receive, with_headers)
