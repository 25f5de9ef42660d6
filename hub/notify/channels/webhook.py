"""A signed webhook (the city's 12345 platform, a PA system, any HTTP receiver): JSON `{title, text, notices}`,
`X-Gridwatch-Timestamp` and `X-Gridwatch-Signature: sha256=hex(HMAC-SHA256(secret, "TS.body"))`, as Stripe
and GitHub sign theirs; `X-Gridwatch-Notice` names the notices (the receiver's idempotency key: a message
repeated after a crash names the same notices)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from hub.notify.channels.base import Message, Outcome, http_status, notice_header


def signature(secret: str, ts: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()


def send(channel: Any, secrets: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    body = json.dumps({"title": msg.title, "text": msg.text, "notices": msg.notices}, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    r = http.post(channel.url, content=body, timeout=channel.timeout,
                  headers={"Content-Type": "application/json", "X-Gridwatch-Timestamp": ts,
                           "X-Gridwatch-Signature": signature(secrets["secret"], ts, body), **notice_header(msg)})
    return http_status(r) or Outcome(True)
