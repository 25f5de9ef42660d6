"""Channels: one module per integration, each speaking its vendor's documented wire format (`wecom`,
`dingtalk`, `feishu`, `webhook` — the city's 12345 platform is one —, `email`, `sms`), and `send`, the only
place a notice leaves the hub. A timeout or a refused connection is retried; the integration reads the rest.
"""

from __future__ import annotations

from typing import Any

import httpx

from hub.notify.channels import dingtalk, email, feishu, sms, webhook, wecom
from hub.notify.channels.base import Integration, Message, Outcome

INTEGRATIONS: dict[str, Integration] = {"wecom": wecom, "dingtalk": dingtalk, "feishu": feishu, "webhook": webhook,
                                        "email": email, "sms": sms}


def send(channel: Any, secrets: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    """One message out on a configured channel (`hub.policy.notify_config`), and what came of it."""
    integration = INTEGRATIONS[channel.type]
    try:
        return integration.send(channel, secrets, msg, http)
    except httpx.TimeoutException:
        return Outcome(False, True, "timed out")
    except httpx.TransportError as exc:
        return Outcome(False, True, f"connection failed: {type(exc).__name__}")


__all__ = ["INTEGRATIONS", "Message", "Outcome", "send"]
