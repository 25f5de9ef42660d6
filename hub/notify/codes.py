"""Sign-in codes by SMS (issue 42): the second factor of a person with a mobile number and no authenticator app,
sent at once (not queued with the notices: a person waits at the sign-in page) through the first SMS channel
of notify.yaml that is on and has a `sign_in_code` template (Aliyun's 验证码 template, `${code}`)."""

from __future__ import annotations

import logging

import httpx

from hub.notify.channels import Message, send
from hub.notify.files import NoticeFiles

logger = logging.getLogger(__name__)
TEMPLATE = "sign_in_code"


class SmsCodes:
    def __init__(self, files: NoticeFiles) -> None:
        self.files = files
        self.http = httpx.Client()

    def _channel(self) -> tuple[object, dict[str, str], str] | None:
        notify = self.files.cfg.notify
        for c in notify.spec.channels:
            if c.type == "sms" and c.id not in notify.off and TEMPLATE in c.templates:
                return c, notify.secrets.get(c.id, {}), c.templates[TEMPLATE]
        return None

    def available(self) -> bool:
        return self._channel() is not None

    def __call__(self, mobile: str, code: str) -> bool:
        found = self._channel()
        if found is None:
            return False
        channel, secrets, template = found
        out = send(channel, secrets, Message(ids=(), title="登录验证码", text="", to=mobile, sms_template=template,
                                             sms_params={"code": code}), self.http)
        if not out.ok:
            logger.warning("a sign-in code was not sent by SMS: %s", out.reason)
        return out.ok
