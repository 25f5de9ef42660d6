"""Mail over SMTP with STARTTLS and AUTH (smtplib, the standard library's client): the title as the subject,
the text as the body, `X-Gridwatch-Notice` naming the notices. 4xx answers are retried, 5xx fail for good."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

import httpx

from hub.notify.channels.base import Message, Outcome


def send(channel: Any, secrets: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    m = EmailMessage()
    m["Subject"], m["From"], m["To"] = msg.title, channel.sender, msg.to
    m["X-Gridwatch-Notice"] = ",".join(map(str, msg.ids))
    m.set_content(msg.text)
    try:
        with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout) as smtp:
            if channel.starttls:
                ctx = ssl.create_default_context(cafile=str(channel.ca_file) if channel.ca_file else None)
                smtp.starttls(context=ctx)
            if "username" in secrets:
                smtp.login(secrets["username"], secrets.get("password", ""))
            smtp.send_message(m)
    except smtplib.SMTPResponseException as exc:
        return Outcome(False, 400 <= exc.smtp_code < 500, f"SMTP {exc.smtp_code}")
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(False, True, f"SMTP: {type(exc).__name__}")
    return Outcome(True)
