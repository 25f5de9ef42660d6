"""企业微信群机器人 (https://developer.work.weixin.qq.com/document/path/91770): POST `?key=KEY`,
`{"msgtype": "markdown", "markdown": {"content": …}}` with `<@userid>` mentions; errcode 45009 is its rate
limit (20 messages a minute)."""

from __future__ import annotations

from typing import Any

import httpx

from hub.notify.channels.base import Message, Outcome, answer, notice_header


def body(msg: Message) -> dict[str, Any]:
    text = msg.text + ("\n" + " ".join(f"<@{m}>" for m in msg.mentions) if msg.mentions else "")
    return {"msgtype": "markdown", "markdown": {"content": text}}


def send(channel: Any, secrets: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    r = http.post(channel.url, params={"key": secrets["key"]}, headers=notice_header(msg), timeout=channel.timeout,
                  json=body(msg))
    return answer(r, "errcode", {45009, -1})
