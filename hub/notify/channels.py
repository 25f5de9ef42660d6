"""Channels: one message out, in each vendor's documented wire format, and what came of it.

- WeCom group robot (企业微信群机器人, https://developer.work.weixin.qq.com/document/path/91770): POST
  `?key=KEY`, `{"msgtype": "markdown", "markdown": {"content": …}}`, `<@userid>` mentions; errcode 45009 is
  its rate limit (20 messages a minute).
- DingTalk robot (钉钉自定义机器人, https://open.dingtalk.com/document/robots/custom-robot-access and
  …/customize-robot-security-settings): POST `?access_token=T&timestamp=MS&sign=S`, S = urlencode(base64(
  HMAC-SHA256(key=secret, msg="MS\\nsecret"))), markdown with `at.atMobiles`; errcode 130101: too fast.
- Feishu robot (飞书自定义机器人, https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot): POST to the
  hook with `timestamp` (seconds) and `sign` = base64(HMAC-SHA256(key="TS\\nsecret", msg="")) in the body.
- Webhook: JSON, `X-Gridwatch-Timestamp` and `X-Gridwatch-Signature: sha256=hex(HMAC-SHA256(secret,
  "TS.body"))`, as Stripe and GitHub sign theirs; `X-Gridwatch-Notice` names the notices (the receiver's
  idempotency key: a message repeated after a crash names the same notices).
- Email over SMTP with STARTTLS (smtplib, the standard library's client).
- Aliyun SMS `SendSms` (RPC style, signature v1, https://help.aliyun.com/zh/sdk/product-overview/rpc-mechanism):
  query parameters sorted and percent-encoded (RFC 3986), StringToSign = "GET&%2F&" + encode(query),
  Signature = base64(HMAC-SHA1(key=secret + "&", StringToSign)).

Each answers an `Outcome`: delivered, to be retried (timeouts, 429, 5xx, the vendor's rate-limit codes) or
failed for good (a wrong key or signature, a refused number), with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import httpx

from hub.policy.notify_config import (
    DingtalkChannel,
    EmailChannel,
    FeishuChannel,
    SmsChannel,
    WebhookChannel,
    WecomChannel,
)


@dataclass(frozen=True)
class Message:
    """What one send carries: one notice, or several grouped for a robot."""

    ids: tuple[int, ...]
    title: str
    text: str
    to: str = ""
    """A person's address: the mobile for SMS, the mailbox for mail; empty for robots and webhooks."""
    mentions: tuple[str, ...] = ()
    """Robots: WeCom user ids or DingTalk mobiles to @."""
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


def _http(r: httpx.Response) -> Outcome | None:
    """The HTTP status alone: None when it is a 2xx and the body must be read."""
    if r.status_code == 429 or r.status_code >= 500:
        after = r.headers.get("retry-after")
        return Outcome(False, True, f"HTTP {r.status_code}", float(after) if after and after.isdigit() else None)
    if r.status_code >= 300:
        return Outcome(False, False, f"HTTP {r.status_code}: {r.text[:200]}")
    return None


def _ids(msg: Message) -> dict[str, str]:
    return {"X-Gridwatch-Notice": ",".join(map(str, msg.ids))}


def dingtalk_sign(secret: str, ts_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{ts_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, ts: int) -> str:
    digest = hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_signature(secret: str, ts: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()


def _pe(s: str) -> str:
    """Aliyun's percent-encoding: RFC 3986 unreserved characters kept, everything else %XX (UTF-8)."""
    return quote(s, safe="-_.~")


def aliyun_signature(params: dict[str, str], secret: str, method: str = "GET") -> str:
    canonical = "&".join(f"{_pe(k)}={_pe(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{_pe('/')}&{_pe(canonical)}"
    return base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def send(channel: Any, secrets: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    try:
        if isinstance(channel, WecomChannel):
            return _wecom(channel, secrets, msg, http)
        if isinstance(channel, DingtalkChannel):
            return _dingtalk(channel, secrets, msg, http)
        if isinstance(channel, FeishuChannel):
            return _feishu(channel, secrets, msg, http)
        if isinstance(channel, WebhookChannel):
            return _webhook(channel, secrets, msg, http)
        if isinstance(channel, SmsChannel):
            return _sms(channel, secrets, msg, http)
        if isinstance(channel, EmailChannel):
            return _email(channel, secrets, msg)
    except httpx.TimeoutException:
        return Outcome(False, True, "timed out")
    except httpx.TransportError as exc:
        return Outcome(False, True, f"connection failed: {type(exc).__name__}")
    raise TypeError(f"no sender for {type(channel).__name__}")


def _answer(r: httpx.Response, code_key: str, retry_codes: set[int]) -> Outcome:
    if (bad := _http(r)) is not None:
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


def _wecom(c: WecomChannel, sec: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    text = msg.text + ("\n" + " ".join(f"<@{m}>" for m in msg.mentions) if msg.mentions else "")
    r = http.post(c.url, params={"key": sec["key"]}, headers=_ids(msg), timeout=c.timeout,
                  json={"msgtype": "markdown", "markdown": {"content": text}})
    return _answer(r, "errcode", {45009, -1})


def _dingtalk(c: DingtalkChannel, sec: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    ts = int(time.time() * 1000)
    text = msg.text + ("\n\n" + " ".join(f"@{m}" for m in msg.mentions) if msg.mentions else "")
    r = http.post(c.url, params={"access_token": sec["token"], "timestamp": str(ts),
                                 "sign": dingtalk_sign(sec["secret"], ts)}, headers=_ids(msg), timeout=c.timeout,
                  json={"msgtype": "markdown", "markdown": {"title": msg.title, "text": text},
                        "at": {"atMobiles": list(msg.mentions), "isAtAll": False}})
    return _answer(r, "errcode", {130101, -1})


def _feishu(c: FeishuChannel, sec: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    ts = int(time.time())
    r = http.post(c.url + sec["hook"], headers=_ids(msg), timeout=c.timeout,
                  json={"timestamp": str(ts), "sign": feishu_sign(sec["secret"], ts), "msg_type": "text",
                        "content": {"text": f"{msg.title}\n{msg.text}"}})
    return _answer(r, "code", {11232, 9499})


def _webhook(c: WebhookChannel, sec: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    body = json.dumps({"title": msg.title, "text": msg.text, "notices": msg.notices}, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    r = http.post(c.url, content=body, timeout=c.timeout,
                  headers={"Content-Type": "application/json", "X-Gridwatch-Timestamp": ts,
                           "X-Gridwatch-Signature": webhook_signature(sec["secret"], ts, body), **_ids(msg)})
    return _http(r) or Outcome(True)


def _sms(c: SmsChannel, sec: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    params = {"AccessKeyId": sec["access_key_id"], "Action": "SendSms", "Format": "JSON", "PhoneNumbers": msg.to,
              "RegionId": c.region, "SignName": c.sign_name, "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0", "TemplateCode": msg.sms_template,
              "TemplateParam": json.dumps(msg.sms_params, ensure_ascii=False),
              "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25",
              "OutId": ",".join(map(str, msg.ids))}
    params["Signature"] = aliyun_signature(params, sec["access_key_secret"])
    r = http.get(c.endpoint, params=params, headers=_ids(msg), timeout=c.timeout)
    if (bad := _http(r)) is not None:
        return bad
    try:
        code = str(r.json().get("Code"))
    except ValueError:
        return Outcome(False, True, f"unreadable answer: {r.text[:100]}")
    if code == "OK":
        return Outcome(True)
    return Outcome(False, code in ("isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "ServiceUnavailable"),
                   f"Code {code}")


def _email(c: EmailChannel, sec: dict[str, str], msg: Message) -> Outcome:
    m = EmailMessage()
    m["Subject"], m["From"], m["To"] = msg.title, c.sender, msg.to
    m["X-Gridwatch-Notice"] = ",".join(map(str, msg.ids))
    m.set_content(msg.text)
    try:
        with smtplib.SMTP(c.host, c.port, timeout=c.timeout) as smtp:
            if c.starttls:
                ctx = ssl.create_default_context(cafile=str(c.ca_file) if c.ca_file else None)
                smtp.starttls(context=ctx)
            if "username" in sec:
                smtp.login(sec["username"], sec.get("password", ""))
            smtp.send_message(m)
    except smtplib.SMTPResponseException as exc:
        return Outcome(False, 400 <= exc.smtp_code < 500, f"SMTP {exc.smtp_code}")
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(False, True, f"SMTP: {type(exc).__name__}")
    return Outcome(True)
