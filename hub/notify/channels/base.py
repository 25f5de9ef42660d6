"""What every integration shares: the message a send carries, the outcome it answers, and the reading of an
HTTP answer (status, then the vendor's code field) into delivered, to be retried or failed for good.

An integration is one module with `send(channel, secrets, message, http) -> Outcome` (the `Integration`
protocol); what it needs of a person (its address, whom it @s) and its rate limit live on its configuration
model (`hub.policy.notify_config`), so the planner never asks which vendor a channel is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx


@dataclass(frozen=True)
class Message:
    """What one send carries: one notice, or several grouped for a robot."""

    ids: tuple[int, ...]
    title: str
    text: str
    """Markdown (the robots' subset: a `###` heading, `- ` items, `[text](url)` links); Feishu renders it."""
    to: str = ""
    """A person's address: the mobile for SMS, the mailbox for mail; empty for robots and webhooks."""
    mentions: tuple[str, ...] = ()
    """Robots: whom to @ (WeCom user ids, DingTalk mobiles, Feishu open_ids or user_ids)."""
    sms_template: str = ""
    sms_params: dict[str, str] = field(default_factory=dict)
    notices: list[dict[str, Any]] = field(default_factory=list)
    """Webhooks: each notice's fields."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retry: bool = False
    reason: str = ""
    retry_after: float | None = None


class Integration(Protocol):
    """One vendor's wire format: a module of its own under `hub.notify.channels`."""

    def send(self, channel: Any, secrets: dict[str, str], msg: Message, http: httpx.Client) -> Outcome: ...


def http_status(r: httpx.Response) -> Outcome | None:
    """The HTTP status alone: None when it is a 2xx and the body must be read."""
    if r.status_code == 429 or r.status_code >= 500:
        after = r.headers.get("retry-after")
        return Outcome(False, True, f"HTTP {r.status_code}", float(after) if after and after.isdigit() else None)
    if r.status_code >= 300:
        return Outcome(False, False, f"HTTP {r.status_code}: {r.text[:200]}")
    return None


def notice_header(msg: Message) -> dict[str, str]:
    """`X-Gridwatch-Notice`: the notices a message carries (a receiver's idempotency key)."""
    return {"X-Gridwatch-Notice": ",".join(map(str, msg.ids))}


def answer(r: httpx.Response, code_key: str, retry_codes: set[int]) -> Outcome:
    """A robot's answer: HTTP status, then its code field (0 is delivered; `retry_codes` are its rate limits)."""
    if (bad := http_status(r)) is not None:
        return bad
    try:
        body = r.json()
        code = int(body.get(code_key, 0))
    except (ValueError, TypeError, AttributeError):
        return Outcome(False, True, f"unreadable answer: {r.text[:100]}")
    if code == 0:
        return Outcome(True)
    msg = body.get("errmsg") or body.get("msg") or ""
    return Outcome(False, code in retry_codes, f"{code_key} {code}: {str(msg)[:200]}")
