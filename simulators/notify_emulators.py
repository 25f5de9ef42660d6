"""Emulators of the services notices go to, each checking what the real one checks, for tests and demos.

One HTTP server answers as:

- **WeCom group robot** `POST /cgi-bin/webhook/send?key=KEY` (https://developer.work.weixin.qq.com/document/
  path/91770): an unknown key answers errcode 93000 ("invalid webhook url"); more than 20 messages a minute
  per robot answer errcode 45009 ("api freq out of limit"); markdown content over 4096 bytes, 40058.
- **DingTalk robot** `POST /robot/send?access_token=T&timestamp=MS&sign=S` (https://open.dingtalk.com/
  document/robots/customize-robot-security-settings): the timestamp must be within an hour, and S must be
  base64(HMAC-SHA256(key=secret, msg="MS\\nsecret")), else errcode 310000 ("sign not match"); more than 20 a
  minute, errcode 130101 ("send too fast").
- **Feishu robot** `POST /open-apis/bot/v2/hook/HOOK` (https://open.feishu.cn/document/client-docs/bot-v3/
  add-custom-bot): `timestamp` (seconds, within an hour) and `sign` = base64(HMAC-SHA256(key="TS\\nsecret",
  msg="")) in the body, else code 19021; 100 a minute, code 11232. A body over 20 KB, or a message that is not
  `text` (`content.text`) or `post` (`content.post.<locale>: {title, content: [[element…]…]}` whose elements are
  `text` {text}, `a` {text, href}, `at` {user_id} or `img` {image_key}), answers code 9499 "Bad Request". A
  `post` is recorded as people see it: the title, then each paragraph's text, a link's words, `@id` for an at.
- **Webhook** `POST /webhook`: `X-Gridwatch-Signature: sha256=hex(HMAC-SHA256(secret, "TS.body"))` with
  `X-Gridwatch-Timestamp` within five minutes, else 401.
- **Aliyun SMS** `GET /?Action=SendSms…` (RPC signature v1, https://help.aliyun.com/zh/sdk/product-overview/
  rpc-mechanism): an unknown AccessKeyId answers 404 InvalidAccessKeyId.NotFound; a wrong Signature, 400
  SignatureDoesNotMatch; a Timestamp more than 15 minutes off, 400 InvalidTimeStamp.Expired; a SignatureNonce
  seen before, 400 SignatureNonceUsed.

and an SMTP server (aiosmtpd) that requires STARTTLS and then AUTH.

Every accepted message is recorded with the notice ids it names (`X-Gridwatch-Notice`, the SMS `OutId`, the
mail header): `GET /_received` lists them, so a test counts each notice once however often it came.
`POST /_faults` queues answers for the next requests (`429`, `500`, `hang`), to test retries; `/_received` also
counts the hangs begun (`hangs`), so a test knows a send is hanging before it acts.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

_POST_TAGS = {"text": ("text",), "a": ("text", "href"), "at": ("user_id",), "img": ("image_key",)}


def _feishu_shown(msg: dict[str, Any]) -> tuple[str, list[str]] | None:
    """What a Feishu group shows of a robot's `text` or `post` message (its words, the ids @-ed), or None when
    Feishu would refuse it as malformed."""
    content = msg.get("content")
    if not isinstance(content, dict):
        return None
    if msg.get("msg_type") == "text":
        text = content.get("text")
        return (text, []) if isinstance(text, str) else None
    post = content.get("post")
    if msg.get("msg_type") != "post" or not isinstance(post, dict) or not post:
        return None
    locale = post.get("zh_cn") or next(iter(post.values()))
    if not isinstance(locale, dict) or not isinstance(locale.get("content"), list):
        return None
    lines, at = [str(locale.get("title", ""))], []
    for para in locale["content"]:
        if not isinstance(para, list):
            return None
        words = []
        for el in para:
            need = _POST_TAGS.get(el.get("tag")) if isinstance(el, dict) else None
            if need is None or not all(isinstance(el.get(k), str) for k in need):
                return None
            if el["tag"] == "at":
                at.append(el["user_id"])
                words.append(f"@{el['user_id']}")
            elif el["tag"] != "img":
                words.append(el["text"])
        lines.append("".join(words))
    return "\n".join(lines), at


class State:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.faults: deque[str] = deque()
        self.sent: dict[str, deque[float]] = {}
        self.nonces: set[str] = set()
        self.hangs = 0
        """Requests that met an injected hang (counted when the hang starts)."""

    def record(self, service: str, ids: str, **what: Any) -> None:
        with self.lock:
            self.received.append({"service": service, "ids": [int(i) for i in ids.split(",") if i.strip()],
                                  "at": time.time(), **what})

    def reject(self, service: str, reason: str) -> None:
        with self.lock:
            self.rejected.append({"service": service, "reason": reason, "at": time.time()})

    def over_rate(self, robot: str, per_minute: int) -> bool:
        now = time.time()
        with self.lock:
            w = self.sent.setdefault(robot, deque())
            while w and w[0] <= now - 60:
                w.popleft()
            if len(w) >= per_minute:  # refused as the vendor refuses it, and kept for the tests to see
                self.rejected.append({"service": robot.partition(":")[0], "reason": "rate", "at": now})
                return True
            w.append(now)
            return False


def _pe(s: str) -> str:
    return quote(s, safe="-_.~")


class Handler(BaseHTTPRequestHandler):
    state: State
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fault(self) -> bool:
        with self.state.lock:
            fault = self.state.faults.popleft() if self.state.faults else None
        if fault is None:
            return False
        if fault == "hang":
            with self.state.lock:
                self.state.hangs += 1
            time.sleep(float(self.state.spec.get("hang_s", 30)))
            self.close_connection = True
            return True
        self._send(int(fault), {"error": f"injected {fault}"})
        return True

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_received":
            with self.state.lock:
                self._send(200, {"received": self.state.received, "rejected": self.state.rejected,
                                 "hangs": self.state.hangs})
            return
        q = dict(parse_qsl(url.query, keep_blank_values=True))
        if q.get("Action") == "SendSms":
            self._body()
            if not self._fault():
                self._sms(q)
            return
        self._send(404, {"error": "no such path"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self._body()
        q = dict(parse_qsl(url.query, keep_blank_values=True))
        if url.path == "/_faults":
            with self.state.lock:
                self.state.faults.extend(json.loads(body)["next"])
            self._send(200, {"queued": len(self.state.faults)})
            return
        if url.path == "/_reset":
            with self.state.lock:
                self.state.received.clear()
                self.state.rejected.clear()
                self.state.sent.clear()
            self._send(200, {})
            return
        if self._fault():
            return
        ids = self.headers.get("X-Gridwatch-Notice", "")
        if url.path == "/cgi-bin/webhook/send":
            self._wecom(q, body, ids)
        elif url.path == "/robot/send":
            self._dingtalk(q, body, ids)
        elif url.path.startswith("/open-apis/bot/v2/hook/"):
            self._feishu(url.path.rsplit("/", 1)[1], body, ids)
        elif url.path == "/webhook":
            self._webhook(body, ids)
        else:
            self._send(404, {"error": "no such path"})

    # ---- the services ------------------------------------------------------------------------------
    def _wecom(self, q: dict[str, str], body: bytes, ids: str) -> None:
        key = q.get("key", "")
        if key not in self.state.spec.get("wecom_keys", []):
            self.state.reject("wecom", "invalid key")
            self._send(200, {"errcode": 93000, "errmsg": "invalid webhook url"})
            return
        msg = json.loads(body)
        content = msg.get("markdown", {}).get("content", "")
        if msg.get("msgtype") != "markdown" or len(content.encode()) > 4096:
            self.state.reject("wecom", "markdown.content exceeds 4096 bytes or not markdown")
            self._send(200, {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"})
            return
        if self.state.over_rate(f"wecom:{key}", 20):
            self._send(200, {"errcode": 45009, "errmsg": "api freq out of limit"})
            return
        self.state.record("wecom", ids, robot=key, text=content)
        self._send(200, {"errcode": 0, "errmsg": "ok"})

    def _dingtalk(self, q: dict[str, str], body: bytes, ids: str) -> None:
        token = q.get("access_token", "")
        secret = self.state.spec.get("dingtalk", {}).get(token)
        if secret is None:
            self.state.reject("dingtalk", "token missing")
            self._send(200, {"errcode": 300001, "errmsg": "token is not exist"})
            return
        ts = q.get("timestamp", "")
        want = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest())
        fresh = ts.isdigit() and abs(time.time() * 1000 - int(ts)) < 3600_000
        if not fresh or not hmac.compare_digest(want, q.get("sign", "").encode()):
            self.state.reject("dingtalk", "sign not match")
            self._send(200, {"errcode": 310000, "errmsg": "sign not match"})
            return
        if self.state.over_rate(f"dingtalk:{token}", 20):
            self._send(200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
            return
        msg = json.loads(body)
        self.state.record("dingtalk", ids, robot=token, text=msg.get("markdown", {}).get("text", ""),
                          at_mobiles=msg.get("at", {}).get("atMobiles", []))
        self._send(200, {"errcode": 0, "errmsg": "ok"})

    def _feishu(self, hook: str, body: bytes, ids: str) -> None:
        secret = self.state.spec.get("feishu", {}).get(hook)
        msg = json.loads(body)
        if secret is None:
            self._send(404, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"})
            return
        ts = str(msg.get("timestamp", ""))
        want = base64.b64encode(hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest())
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 3600
        if not fresh or not hmac.compare_digest(want, str(msg.get("sign", "")).encode()):
            self.state.reject("feishu", "sign match fail")
            self._send(200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from "
                                                   "current time"})
            return
        if self.state.over_rate(f"feishu:{hook}", 100):
            self._send(200, {"code": 11232, "msg": "frequency limited"})
            return
        shown = _feishu_shown(msg) if len(body) <= 20 * 1024 else None
        if shown is None:
            self.state.reject("feishu", "bad request")
            self._send(200, {"code": 9499, "msg": "Bad Request", "data": {}})
            return
        text, at = shown
        self.state.record("feishu", ids, robot=hook, text=text, msg_type=msg.get("msg_type"), at_users=at)
        self._send(200, {"code": 0, "msg": "success", "data": {}})

    def _webhook(self, body: bytes, ids: str) -> None:
        secret = self.state.spec.get("webhook_secret", "")
        ts = self.headers.get("X-Gridwatch-Timestamp", "")
        want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        if not fresh or not hmac.compare_digest(want, self.headers.get("X-Gridwatch-Signature", "")):
            self.state.reject("webhook", "bad signature")
            self._send(401, {"error": "bad signature"})
            return
        msg = json.loads(body)
        self.state.record("webhook", ids, text=msg.get("text", ""), notices=msg.get("notices", []))
        self._send(200, {"ok": True})

    def _sms(self, q: dict[str, str]) -> None:
        keys = self.state.spec.get("aliyun", {})
        secret = keys.get(q.get("AccessKeyId", ""))
        if secret is None:
            self._send(404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."})
            return
        sign = q.pop("Signature", "")
        canonical = "&".join(f"{_pe(k)}={_pe(v)}" for k, v in sorted(q.items()))
        to_sign = f"GET&{_pe('/')}&{_pe(canonical)}"
        want = base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(want, sign):
            self.state.reject("sms", "SignatureDoesNotMatch")
            self._send(400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched "
                                                                         "with our calculation."})
            return
        try:
            at = datetime.strptime(q.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            at = datetime(1970, 1, 1, tzinfo=UTC)
        if abs((datetime.now(UTC) - at).total_seconds()) > 900:
            self._send(400, {"Code": "InvalidTimeStamp.Expired", "Message": "Specified time stamp or date value "
                                                                            "is expired."})
            return
        with self.state.lock:
            used = q.get("SignatureNonce", "") in self.state.nonces
            self.state.nonces.add(q.get("SignatureNonce", ""))
        if used:
            self._send(400, {"Code": "SignatureNonceUsed", "Message": "Specified signature nonce was used already."})
            return
        self.state.record("sms", q.get("OutId", ""), to=q.get("PhoneNumbers"), template=q.get("TemplateCode"),
                          params=json.loads(q.get("TemplateParam") or "{}"), sign_name=q.get("SignName"))
        self._send(200, {"Code": "OK", "Message": "OK", "BizId": f"{time.time_ns()}", "RequestId": "emulated"})


class _Mail:
    def __init__(self, state: State) -> None:
        self.state = state

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content or envelope.content)
        payload = msg.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(msg.get_payload())
        from email.header import decode_header, make_header
        self.state.record("email", str(msg.get("X-Gridwatch-Notice", "")), to=list(envelope.rcpt_tos),
                          subject=str(make_header(decode_header(str(msg.get("Subject", ""))))), text=text)
        return "250 OK"


@contextmanager
def serving(spec: dict[str, Any]) -> Iterator[tuple[int, int | None]]:
    """The HTTP emulators (and the SMTP server when the spec has `smtp`) on loopback; yields their ports."""
    state = State(spec)
    handler = type("H", (Handler,), {"state": state})
    http = ThreadingHTTPServer(("127.0.0.1", int(spec.get("port", 0))), handler)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    smtp = None
    if "smtp" in spec:
        import ssl

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        m = spec["smtp"]
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(m["cert"], m["key"])

        def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and data.login.decode() == m["user"] and hmac.compare_digest(
                data.password.decode(), m["password"])
            return AuthResult(success=ok, handled=False)

        from simulators.services import free_port

        smtp = Controller(_Mail(state), hostname="127.0.0.1", port=int(m.get("port") or free_port()), tls_context=ctx,
                          require_starttls=True, auth_required=True, authenticator=auth, auth_require_tls=True)
        smtp.start()
    try:
        yield http.server_address[1], (smtp.port if smtp is not None else None)
    finally:
        http.shutdown()
        if smtp is not None:
            smtp.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", type=Path, help="JSON: port, wecom_keys, dingtalk {token: secret}, feishu {hook: secret}, "
                                           "webhook_secret, aliyun {key id: secret}, smtp {port, cert, key, user, "
                                           "password}, hang_s")
    args = p.parse_args(argv)
    with serving(json.loads(args.spec.read_text())) as (port, smtp):
        print(json.dumps({"port": port, "smtp": smtp}), flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
