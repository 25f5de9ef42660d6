"""SIP digest authentication (RFC 3261 §22.4 on RFC 2617 §3.2), as GB/T 28181-2016 §9.1.2.1 has the upper
platform challenge a REGISTER: `401` with `WWW-Authenticate: Digest realm="<SIP domain>", nonce="…",
algorithm=MD5`, and the device's second REGISTER carrying `Authorization: Digest username="<device id>",
realm, nonce, uri, response[, qop=auth, nc, cnonce]`.

    HA1 = MD5(username:realm:password)   HA2 = MD5(method:uri)
    response = MD5(HA1:nonce:HA2), or with qop=auth MD5(HA1:nonce:nc:cnonce:auth:HA2)

MD5 is what the standard and every camera speak (GB/T 28181-2022 adds SHA-256 as an option; `algorithm` is
read and anything but MD5 refused by name). Nonces are stateless: the time they were made and an HMAC of it
under a secret of this process, so a nonce is good for its lifetime (`NONCE_TTL` seconds unless told) and
cannot be forged; the comparison is constant-time (`hmac.compare_digest`). Pure: clocks and secrets are passed
in.

As RFC 3261 §22.4 asks of a server (and RFC 2617 §3.2.1 defines): the challenge offers `qop="auth"`; a client
that uses it sends `nc` and `cnonce` and its response covers them (`NonceCounts` refuses an `nc` already seen
for a nonce: no replay within the nonce's life); a client that ignores it (RFC 2069, as many cameras) is still
answered. A nonce of ours that has expired, under a response right for it, gets a new challenge with
`stale=TRUE` (the device retries with the new nonce without asking anyone for the password); a nonce not ours,
or a wrong response, gets a plain challenge or a refusal.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

NONCE_TTL = 300.0
_PARAM = re.compile(r'([A-Za-z-]+)\s*=\s*(?:"([^"\\]{0,512})"|([^\s,"]{1,512}))')


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def parse_params(value: str) -> dict[str, str]:
    """`Digest username="a", realm="b", nc=00000001` → {username: a, realm: b, nc: 00000001}."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _PARAM.finditer(rest)}


def make_nonce(secret: bytes, now: float) -> str:
    """The time (hex seconds), 64 random bits (two challenges in one second differ: their nonce counts are
    their own) and an HMAC of both."""
    import secrets

    body = f"{int(now):x}{secrets.token_hex(8)}"
    return body + hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()[:24]


def nonce_fresh(secret: bytes, nonce: str, now: float, ttl: float = NONCE_TTL) -> bool:
    body, mac = nonce[:-24], nonce[-24:]
    if not re.fullmatch(r"[0-9a-f]{17,28}", body):
        return False
    good = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()[:24]
    return hmac.compare_digest(good, mac) and 0 <= now - int(body[:-16], 16) <= ttl


def challenge(realm: str, nonce: str, stale: bool = False) -> str:
    return f'Digest realm="{realm}", nonce="{nonce}", algorithm=MD5, qop="auth"' + (", stale=TRUE" if stale else "")


def expected(params: dict[str, str], method: str, password: str) -> str:
    ha1 = md5(f"{params.get('username', '')}:{params.get('realm', '')}:{password}")
    ha2 = md5(f"{method}:{params.get('uri', '')}")
    if params.get("qop"):
        return md5(f"{ha1}:{params.get('nonce', '')}:{params.get('nc', '')}:{params.get('cnonce', '')}:"
                   f"{params['qop']}:{ha2}")
    return md5(f"{ha1}:{params.get('nonce', '')}:{ha2}")


def authorization(username: str, realm: str, nonce: str, uri: str, method: str, password: str, *,
                  qop: str | None = None, nc: int = 1, cnonce: str | None = None) -> str:
    """What a device sends back (the emulator's side): with `qop="auth"` (when the challenge offered it), its
    `nc` and a `cnonce` of its own (RFC 2617 §3.2.2)."""
    params = {"username": username, "realm": realm, "nonce": nonce, "uri": uri}
    if qop == "auth":
        import secrets

        params |= {"qop": "auth", "nc": f"{nc:08x}", "cnonce": cnonce or secrets.token_hex(8)}
    resp = expected(params, method, password)
    more = f', qop=auth, nc={params["nc"]}, cnonce="{params["cnonce"]}"' if qop == "auth" else ""
    return (f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5{more}')


def offered_qop(challenge_params: dict[str, str]) -> str | None:
    """`auth` when a challenge offers it (`qop="auth,auth-int"` lists several)."""
    return "auth" if "auth" in [q.strip() for q in challenge_params.get("qop", "").split(",")] else None


class NonceCounts:
    """The highest `nc` seen for each live nonce: a request repeating one is a replay (RFC 2617 §3.2.2: the
    server keeps the count to detect replays). Bounded: nonces past their life are dropped."""

    def __init__(self, ttl: float = NONCE_TTL, most: int = 100_000) -> None:
        self.ttl, self.most = ttl, most
        self.seen: dict[str, tuple[int, float]] = {}

    def fresh(self, nonce: str, nc: str, now: float) -> bool:
        try:
            n = int(nc, 16)
        except ValueError:
            return False
        last = self.seen.get(nonce)
        if last is not None and n <= last[0]:
            return False
        if len(self.seen) >= self.most:
            self.seen = {k: v for k, v in self.seen.items() if now - v[1] <= self.ttl}
            if len(self.seen) >= self.most:
                self.seen.clear()
        self.seen[nonce] = (n, last[1] if last else now)
        return True


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str
    """"" when ok; else `stale_nonce` (ours, expired, the response right for it: challenge with stale=TRUE),
    `bad_nonce` (not ours: challenge again), `replayed` (an nc already used), bad_credentials, wrong_realm,
    wrong_user, bad_algorithm, malformed, no_credentials."""


def verify(header: str | None, *, method: str, user: str, realm: str, password: str, secret: bytes,
           now: float, ttl: float = NONCE_TTL, counts: NonceCounts | None = None) -> Verdict:
    """Check a request's `Authorization` against the device's password."""
    if not header:
        return Verdict(False, "no_credentials")
    p = parse_params(header)
    if not p or not all(k in p for k in ("username", "realm", "nonce", "uri", "response")):
        return Verdict(False, "malformed")
    if p.get("algorithm", "MD5").upper() != "MD5":
        return Verdict(False, "bad_algorithm")
    if p.get("qop") not in (None, "auth"):
        return Verdict(False, "bad_algorithm")
    if p["username"] != user:
        return Verdict(False, "wrong_user")
    if p["realm"] != realm:
        return Verdict(False, "wrong_realm")
    if p.get("qop") and not (p.get("nc") and p.get("cnonce")):
        return Verdict(False, "malformed")
    if not nonce_fresh(secret, p["nonce"], now, ttl=float("inf")):
        return Verdict(False, "bad_nonce")
    right = hmac.compare_digest(expected(p, method, password), p["response"].lower())
    if not nonce_fresh(secret, p["nonce"], now, ttl):
        return Verdict(False, "stale_nonce" if right else "bad_nonce")
    if not right:
        return Verdict(False, "bad_credentials")
    if p.get("qop") and counts is not None and not counts.fresh(p["nonce"], p["nc"], now):
        return Verdict(False, "replayed")
    return Verdict(True, "")
