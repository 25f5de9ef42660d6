"""Aliyun SMS `SendSms` (RPC style, signature v1, https://help.aliyun.com/zh/sdk/product-overview/rpc-mechanism):
query parameters sorted and percent-encoded (RFC 3986), StringToSign = "GET&%2F&" + encode(query),
Signature = base64(HMAC-SHA1(key=secret + "&", StringToSign)); `OutId` names the notices. Throttling codes
are retried, anything else (a refused number, a wrong key) fails for good."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from hub.notify.channels.base import Message, Outcome, http_status, notice_header

RETRIED = ("isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "ServiceUnavailable")


def _pe(s: str) -> str:
    """Aliyun's percent-encoding: RFC 3986 unreserved characters kept, everything else %XX (UTF-8)."""
    return quote(s, safe="-_.~")


def signature(params: dict[str, str], secret: str, method: str = "GET") -> str:
    canonical = "&".join(f"{_pe(k)}={_pe(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{_pe('/')}&{_pe(canonical)}"
    return base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def send(channel: Any, secrets: dict[str, str], msg: Message, http: httpx.Client) -> Outcome:
    params = {"AccessKeyId": secrets["access_key_id"], "Action": "SendSms", "Format": "JSON",
              "PhoneNumbers": msg.to, "RegionId": channel.region, "SignName": channel.sign_name,
              "SignatureMethod": "HMAC-SHA1", "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0",
              "TemplateCode": msg.sms_template, "TemplateParam": json.dumps(msg.sms_params, ensure_ascii=False),
              "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25",
              "OutId": ",".join(map(str, msg.ids))}
    params["Signature"] = signature(params, secrets["access_key_secret"])
    r = http.get(channel.endpoint, params=params, headers=notice_header(msg), timeout=channel.timeout)
    if (bad := http_status(r)) is not None:
        return bad
    try:
        code = str(r.json().get("Code"))
    except ValueError:
        return Outcome(False, True, f"unreadable answer: {r.text[:100]}")
    if code == "OK":
        return Outcome(True)
    return Outcome(False, code in RETRIED, f"Code {code}")
