"""飞书自定义机器人 (https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot): POST to the hook with
`timestamp` (seconds) and `sign` = base64(HMAC-SHA256(key="TS\\nsecret", msg="")) in the body.

Feishu shows a `text` message as typed, so markdown would reach people raw (`###`, `[查看并签收](url)`).
The message is sent as rich text (`msg_type: post`, `content.post.zh_cn: {title, content}`): the title once,
one paragraph per line of the template, links as `a` tags, `**bold**` as a bold `text`, and the people on
duty @-ed by their Feishu id (`{"tag": "at", "user_id": open_id or user_id}`, what a custom robot accepts).
Code 11232 is its rate limit (100 a minute, 5 a second), 9499 a malformed body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any

import httpx

from hub.notify.channels.base import Message, Outcome, answer, notice_header

_INLINE = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)|\*\*([^*]+)\*\*")


def sign(secret: str, ts: int) -> str:
    digest = hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _line(line: str) -> list[dict[str, Any]]:
    """One line of the robots' markdown as post elements."""
    out: list[dict[str, Any]] = []
    at = 0
    for m in _INLINE.finditer(line):
        if m.start() > at:
            out.append({"tag": "text", "text": line[at:m.start()]})
        if m.group(1) is not None:
            out.append({"tag": "a", "text": m.group(1), "href": m.group(2)})
        else:
            out.append({"tag": "text", "text": m.group(3), "style": ["bold"]})
        at = m.end()
    if at < len(line):
        out.append({"tag": "text", "text": line[at:]})
    return out


def post(msg: Message) -> dict[str, Any]:
    """The message as Feishu rich text: a heading that repeats the title is left out, other headings bold,
    list items with a bullet, the mentions as `at` tags in a last paragraph."""
    paragraphs: list[list[dict[str, Any]]] = []
    for raw in msg.text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            if heading != msg.title.strip():
                paragraphs.append([{"tag": "text", "text": heading, "style": ["bold"]}])
            continue
        if line.startswith(("- ", "* ")):
            line = "• " + line[2:]
        paragraphs.append(_line(line))
    if msg.mentions:
        paragraphs.append([{"tag": "at", "user_id": m} for m in msg.mentions])
    return {"post": {"zh_cn": {"title": msg.title, "content": paragraphs}}}


def send(channel: Any, secrets: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    ts = int(time.time())
    r = http.post(channel.url + secrets["hook"], headers=notice_header(msg), timeout=channel.timeout,
                  json={"timestamp": str(ts), "sign": sign(secrets["secret"], ts), "msg_type": "post",
                        "content": post(msg)})
    return answer(r, "code", {11232, 9499})
