"""SIP digest authentication (RFC 3261 §22.4 on RFC 2617 §3.2), as GB/T 28181-2016 §9.1.2.1 has the upper
platform challenge a REGISTER: `401` with `WWW-Authenticate: Digest realm="<SIP domain>", nonce="…",
algorithm=MD5`, and the device's second REGISTER carrying `Authorization: Digest username="<device id>",
realm, nonce, uri, response[, qop=auth, nc, cnonce]`.

    HA1 = MD5(username:realm:password)   HA2 = MD5(method:uri)
    response = MD5(HA1:nonce:HA2), or with qop=auth MD5(HA1:nonce:nc:cnonce:auth:HA2)

MD5 is what the standard and every camera speak (GB/T 28181-2022 adds SHA-256 as an option; `algorithm` is
read and anything but MD5 refused by name). Nonces are stateless: the time they were made and an HMAC of it
under a secret of this process, so a nonce is good for `NONCE_TTL` seconds and cannot be forged; the
comparison is constant-time (`hmac.compare_digest`). Pure: clocks and secrets are passed in.
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
    stamp = f"{int(now):x}"
    return stamp + hmac.new(secret, stamp.encode(), hashlib.sha256).hexdigest()[:24]


def nonce_fresh(secret: bytes, nonce: str, now: float, ttl: float = NONCE_TTL) -> bool:
    stamp, mac = nonce[:-24], nonce[-24:]
    if not stamp or not re.fullmatch(r"[0-9a-f]{1,12}", stamp):
        return False
    good = hmac.new(secret, stamp.encode(), hashlib.sha256).hexdigest()[:24]
    return hmac.compare_digest(good, mac) and 0 <= now - int(stamp, 16) <= ttl


def challenge(realm: str, nonce: str) -> str:
    return f'Digest realm="{realm}", nonce="{nonce}", algorithm=MD5'


def expected(params: dict[str, str], method: str, password: str) -> str:
    ha1 = md5(f"{params.get('username', '')}:{params.get('realm', '')}:{password}")
    ha2 = md5(f"{method}:{params.get('uri', '')}")
    if params.get("qop"):
        return md5(f"{ha1}:{params.get('nonce', '')}:{params.get('nc', '')}:{params.get('cnonce', '')}:"
                   f"{params['qop']}:{ha2}")
    return md5(f"{ha1}:{params.get('nonce', '')}:{ha2}")


def authorization(username: str, realm: str, nonce: str, uri: str, method: str, password: str) -> str:
    """What a device sends back (the emulator's side)."""
    params = {"username": username, "realm": realm, "nonce": nonce, "uri": uri}
    resp = expected(params, method, password)
    return (f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5')


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str  # "" when ok; else stale_nonce, bad_credentials, wrong_realm, wrong_user, bad_algorithm, malformed


def verify(header: str | None, *, method: str, user: str, realm: str, password: str, secret: bytes,
           now: float) -> Verdict:
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
    if not nonce_fresh(secret, p["nonce"], now):
        return Verdict(False, "stale_nonce")
    if not hmac.compare_digest(expected(p, method, password), p["response"].lower()):
        return Verdict(False, "bad_credentials")
    return Verdict(True, "")
