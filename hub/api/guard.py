"""The hub's front door, before any body is read: requests with a body must say how long it is and stay
under `limits.max_body_bytes` (413/411), a request to the API (or the operators' doors) with a wrong key is
refused before its body is parsed (401) and recorded in the audit trail (`refused`), and a client that keeps
presenting wrong keys is turned away for a while (429)."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import Counter

from hub.config import ApiKey, hash_key

logger = logging.getLogger(__name__)
MATCHED_KEY = "gridwatch_api_key"  # request state: the key the guard matched, so it is hashed once
GUARDED = ("/api/", "/metrics", "/openapi.json", "/docs", "/redoc")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FailureLimiter:
    """At most `allowed` authentication failures per client within `window` seconds; past that the client
    is refused until its oldest failure leaves the window. Pure, with an injected clock."""

    def __init__(self, allowed: int = 20, window: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 10_000) -> None:
        self.allowed, self.window, self.clock, self.max_clients = allowed, window, clock, max_clients
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        q = self._failures.get(client)
        if q is None:
            return deque()
        now = self.clock()
        while q and now - q[0] >= self.window:
            q.popleft()
        if not q:
            del self._failures[client]
        return q

    def blocked_for(self, client: str) -> float:
        """Seconds the client must wait; 0 when it may try."""
        q = self._recent(client)
        if len(q) < self.allowed:
            return 0.0
        return max(0.0, q[0] + self.window - self.clock())

    def failed(self, client: str) -> None:
        if client not in self._failures and len(self._failures) >= self.max_clients:
            self._failures.pop(next(iter(self._failures)))  # bounded memory under a spray of addresses
        self._failures.setdefault(client, deque()).append(self.clock())


class IntakeLimiter:
    """Alerts per second per edge key, as a token bucket: `burst` at once, refilled at `rate`. A batch larger
    than the burst passes once the bucket is full and leaves a debt, so no batch waits forever. Pure, with
    an injected clock (and a lock: requests run on several threads); `take` answers how long to wait
    (0: taken)."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key name -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, n: int) -> float:
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            need = min(n, self.burst)
            if tokens < need:
                self._buckets[key] = (tokens, now)
                return (need - tokens) / self.rate
            self._buckets[key] = (tokens - n, now)
            return 0.0


def networks(proxies: list[str]) -> list[IPNetwork]:
    """`listen.trusted_proxies` as networks (validated by the config already)."""
    return [ipaddress.ip_network(p, strict=False) for p in proxies]


def client_address(peer: str, forwarded_for: str | None, proxies: list[IPNetwork]) -> str:
    """Who is asking: the peer, or behind trusted proxies the last `X-Forwarded-For` hop that is not one of
    them (the hops before it are the client's own word and may be forged)."""
    def trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr.strip())
        except ValueError:
            return False
        return any(ip in net for net in proxies)

    if not proxies or not forwarded_for or not trusted(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop
    return hops[0] if hops else peer


class Guard:
    """ASGI middleware in front of the FastAPI app."""

    def __init__(self, app: ASGIApp, *, keys: Callable[[], list[ApiKey]], max_body: int,
                 limiter: FailureLimiter, failures: Counter, proxies: list[str] | None = None,
                 record: Callable[[str, str, str, str | None], None] | None = None) -> None:
        """`record(client, "METHOD path", reason, key name)`: a refused key, for the audit trail (run on a
        worker thread: it writes to the database)."""
        self.app, self.keys, self.max_body, self.limiter, self.failures = app, keys, max_body, limiter, failures
        self.record = record
        self.proxies = networks(proxies or [])
        self._said = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope["method"] in ("POST", "PUT", "PATCH"):
            length = headers.get("content-length")
            if length is None:
                if headers.get("transfer-encoding"):
                    await _answer(send, 411, "a request body needs a Content-Length header")
                    return
            elif not length.isdigit() or int(length) > self.max_body:
                await _answer(send, 413, f"request body over {self.max_body} bytes")
                return
        path: str = scope.get("path", "")
        auth = headers.get("authorization")
        if path.startswith(GUARDED) and auth is not None:
            client = client_address((scope.get("client") or ("?", 0))[0], headers.get("x-forwarded-for"),
                                    self.proxies)
            wait = self.limiter.blocked_for(client)
            if wait > 0:
                await _answer(send, 429, "too many wrong keys; try again later", {"Retry-After": f"{wait:.0f}"})
                return
            token = auth[7:] if auth.lower().startswith("bearer ") else ""
            if token.startswith("gws_"):  # a person's session: looked up (and refused) by `principal()`
                await self.app(scope, receive, send)
                return
            hashed = hash_key(token)  # once, then compared with every key's hash in constant time
            key = next((k for k in self.keys() if hmac.compare_digest(k.hash, hashed)), None)
            if key is None:
                self.limiter.failed(client)
                self.failures.inc()
                now = time.monotonic()
                if now - self._said >= 10.0:  # never the key itself, and at most a line per 10 s
                    self._said = now
                    logger.warning("wrong API key from %s on %s %s", client, scope["method"], path)
                await self._record(client, scope, "unknown_key", None)
                await _answer(send, 401, "unknown API key", {"WWW-Authenticate": "Bearer"})
                return
            if not key.allows(client):  # bound to its machines' addresses, and this is not one
                self.limiter.failed(client)
                self.failures.inc()
                if time.monotonic() - self._said >= 10.0:
                    self._said = time.monotonic()
                    logger.warning("key %s used from %s, outside its sources", key.name, client)
                await self._record(client, scope, "outside_sources", key.name)
                await _answer(send, 401, f"this key may not be used from {client}", {"WWW-Authenticate": "Bearer"})
                return
            scope.setdefault("state", {})[MATCHED_KEY] = key  # `principal()` takes it from here
        await self.app(scope, receive, send)


    async def _record(self, client: str, scope: Scope, reason: str, key: str | None) -> None:
        if self.record is None:
            return
        from starlette.concurrency import run_in_threadpool

        try:
            await run_in_threadpool(self.record, client, f"{scope['method']} {str(scope.get('path'))[:200]}",
                                    reason, key)
        except Exception as e:  # the refusal stands whether or not it could be written down
            logger.warning("a refused key could not be recorded: %s", str(e).splitlines()[0][:200] if str(e) else e)


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    hs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    hs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hs})
    await send({"type": "http.response.body", "body": body})
