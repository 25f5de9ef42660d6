"""钉钉自定义机器人 (https://open.dingtalk.com/document/robots/custom-robot-access and
…/customize-robot-security-settings): POST `?access_token=T&timestamp=MS&sign=S`, S = base64(HMAC-SHA256(
key=secret, msg="MS\\nsecret")) (URL-encoded by the client), markdown with `at.atMobiles` and the `@mobile` in
the text; errcode 130101: too fast (20 a minute)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import httpx

from hub.notify.channels.base import Message, Outcome, answer, notice_header


def sign(secret: str, ts_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{ts_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def body(msg: Message) -> dict[str, Any]:
    text = msg.text + ("\n\n" + " ".join(f"@{m}" for m in msg.mentions) if msg.mentions else "")
    return {"msgtype": "markdown", "markdown": {"title": msg.title, "text": text},
            "at": {"atMobiles": list(msg.mentions), "isAtAll": False}}


def send(channel: Any, secrets: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    ts = int(time.time() * 1000)
    r = http.post(channel.url, params={"access_token": secrets["token"], "timestamp": str(ts),
                                       "sign": sign(secrets["secret"], ts)},
                  headers=notice_header(msg), timeout=channel.timeout, json=body(msg))
    return answer(r, "errcode", {130101, -1})
