"""Browser hardening on every answer (issue 30, first part): the page may not be framed (clickjacking),
content types are not sniffed, case links leak into no referrer, and over TLS the browser is told to keep
to https (HSTS). A pure ASGI wrapper, so streams get the headers without being buffered."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")


class Hardening:
    def __init__(self, app: ASGIApp, *, tls: bool) -> None:
        self.app = app
        self.headers = [*HEADERS, *([HSTS] if tls else [])]

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
