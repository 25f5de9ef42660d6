"""The notification policy (`notify.yaml`): channels, rules (which events tell whom, by which channel) and
message templates, checked at load.

A channel speaks one vendor's documented wire format (`hub.notify.channels`): a WeCom, DingTalk or Feishu group
robot, a signed webhook, SMTP mail, or Aliyun SMS. Its secrets are named by environment variable and read
at load; the values live only in `Notify.secrets`, never in a model that is dumped or logged. A channel whose
variable is not set is off (`Notify.off`: the reason, said at start, by `hub check` and in /metrics), and rules
skip it: the shipped policy runs with only the channels a deployment has secrets for. Templates are Jinja2
(sandboxed, every field required); a template naming a field that does not exist is refused with its file,
path and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field, model_validator

from gridwatch.core.config import Strict, first_repeat
from gridwatch.core.durations import Duration
from gridwatch.core.errors import ConfigError
from gridwatch.core.yamlconf import YamlSource, load_sourced, problem
from hub.policy.org import Org

Kind = Literal["opened", "dispatched", "yellow", "red", "escalated", "backup", "supervised", "extension_decided",
               "suspension_decided", "sent_back", "reopened", "agent_offline", "calendar", "supervision_overdue",
               "warning_raised"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
Role = Literal["duty", "day", "leader", "next_leader", "unit", "admins"]

FIELDS = {
    "event": "what happened, in words (红灯, 升级…)", "case_id": "the case's number", "title": "the case's title",
    "category": "the category's name", "severity": "the severity's name", "grid": "the grid's name",
    "owner": "the holding unit's name", "unit": "the unit told about (escalated to, backup grid)",
    "place": "where: the device's address or name", "stage": "the running stage (签收, 办理…)",
    "light": "the stage's light (绿灯, 黄灯, 红灯)", "left": "time left on the stage, or how long overdue",
    "link": "the case on the phone view", "to": "the recipient's name", "detail": "the reason given, if any",
}
"""The fields a template may use."""

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


class Template(Strict):
    title: str = Field(description="the message's title (mail subject, card title)")
    text: str = Field(description="the message, markdown for the chat robots")
    line: str = Field(description="one line of a grouped message (several cases to one robot in a minute)")
    sms: dict[str, str] = Field(default_factory=dict, description="the SMS template's parameters")


def _t(event: str, text: str) -> Template:
    head = "【{{ event }}】{{ case_id }} {{ category }}"
    return Template(title=f"{head}", text=f"### {head}\n{text}\n\n[查看并签收]({{{{ link }}}})",
                    line=f"{head} · {{{{ grid }}}} · {{{{ place }}}} · "
                         "{{ stage }}{{ light }}（{{ left }}）",
                    sms={"event": "{{ event }}", "case": "{{ case_id }}", "place": "{{ place }}",
                         "left": "{{ left }}"})


DEFAULT_TEMPLATES: dict[str, Template] = {
    k: _t(k, "- 地点：{{ place }}（{{ grid }}）\n- 承办：{{ owner }}\n- 环节：{{ stage }} · {{ light }} · {{ left }}"
             "\n- 内容：{{ title }}{% if detail %}\n- 说明：{{ detail }}{% endif %}")
    for k in (*KINDS, "still_red") if k != "calendar"} | {
    "calendar": Template(title="【{{ event }}】{{ unit }}", text="### 【{{ event }}】{{ unit }}\n{{ detail }}",
                         line="【{{ event }}】{{ detail }}", sms={"event": "{{ event }}", "detail": "{{ unit }}"})}


class ContactLike(Protocol):
    """A person's contact points, as the planner reads them (`hub.store.people_tables.Contact`)."""

    mobile: str | None
    email: str | None
    wecom_user: str | None
    dingtalk_mobile: str | None
    feishu_user: str | None


@dataclass(frozen=True)
class Address:
    """Where a channel reaches one recipient: `target` (a mobile, a mailbox, or the channel itself for robots
    and webhooks), whom it @s, the extra fields it needs (an SMS template code), and why not when it cannot."""

    target: str
    mention: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    problem: str = ""


class ChannelBase(Strict):
    """What the planner asks of every channel; the integration (`hub.notify.channels.<type>`) does the rest."""

    personal: ClassVar[bool] = False
    """True: it writes to a person's own address (SMS, mail), so a unit without a person is not told by it."""
    groups: ClassVar[bool] = False
    """True: a robot: several due notices go in one message, after `group_wait`."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    units: list[str] = Field(default_factory=list, description="robots and webhooks: the units (with their "
                                                               "subtrees) whose cases go to it; empty: all")
    rate_per_minute: int = Field(20, ge=1, le=1_000_000, description="messages a minute at most (WeCom and "
                                                                  "DingTalk robots: 20); more are grouped")
    timeout: Duration = Field(10.0, gt=0, le=120)
    group_wait: Duration = Field(2.0, ge=0, le=300, description="robots: wait this long for more to group")

    def serves(self, unit: str, org: Org) -> bool:
        """Whether a notice about `unit` may go here: a robot or webhook with `units` serves only those."""
        return self.personal or not self.units or any(unit in org.units and org.within(unit, u) for u in self.units)

    def address(self, contact: ContactLike | None, template: str, kind: str) -> Address:
        """Robots and webhooks: the channel itself, @-ing the person when it knows their id (`mention`)."""
        return Address(self.id, self.mention(contact) if contact is not None else None)

    def mention(self, contact: ContactLike) -> str | None:
        return None


class WecomChannel(ChannelBase):
    """企业微信群机器人: https://developer.work.weixin.qq.com/document/path/91770"""

    type: Literal["wecom"]
    url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    key_env: str = Field(description="the robot's webhook key")
    groups: ClassVar[bool] = True

    def mention(self, contact: ContactLike) -> str | None:
        return contact.wecom_user


class DingtalkChannel(ChannelBase):
    """钉钉自定义机器人, signed: https://open.dingtalk.com/document/robots/customize-robot-security-settings"""

    type: Literal["dingtalk"]
    url: str = "https://oapi.dingtalk.com/robot/send"
    token_env: str = Field(description="access_token of the robot's webhook")
    secret_env: str = Field(description="the robot's signing secret (SEC…)")
    groups: ClassVar[bool] = True

    def mention(self, contact: ContactLike) -> str | None:
        return contact.dingtalk_mobile


class FeishuChannel(ChannelBase):
    """飞书自定义机器人, signed: https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot"""

    type: Literal["feishu"]
    url: str = "https://open.feishu.cn/open-apis/bot/v2/hook/"
    hook_env: str = Field(description="the hook id at the end of the robot's webhook URL")
    secret_env: str = Field(description="the robot's signing secret")
    rate_per_minute: int = Field(100, ge=1, le=1_000_000, description="messages a minute at most (Feishu: 100)")
    groups: ClassVar[bool] = True

    def mention(self, contact: ContactLike) -> str | None:
        return contact.feishu_user


class WebhookChannel(ChannelBase):
    """Any HTTP receiver (the city's 12345 platform, a PA system): JSON, HMAC-SHA256 signed."""

    type: Literal["webhook"]
    url: str
    secret_env: str = Field(description="key of the X-Gridwatch-Signature HMAC-SHA256")


class EmailChannel(ChannelBase):
    type: Literal["email"]
    host: str
    port: int = 587
    starttls: bool = True
    ca_file: Path | None = Field(None, description="CA to check the server's certificate (default: the system's)")
    username_env: str | None = None
    password_env: str | None = None
    sender: str = Field(description="From: address")
    personal: ClassVar[bool] = True

    def address(self, contact: ContactLike | None, template: str, kind: str) -> Address:
        mail = (contact.email if contact else None) or ""
        return Address(mail, problem="" if mail else "没有邮箱 (no email address)")


class SmsChannel(ChannelBase):
    """Aliyun SendSms (RPC API, signature v1): https://help.aliyun.com/zh/sms/developer-reference/api-dysmsapi-2017-05-25-sendsms"""

    type: Literal["sms"]
    provider: Literal["aliyun"] = "aliyun"
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    region: str = "cn-hangzhou"
    access_key_id_env: str
    access_key_secret_env: str
    sign_name: str = Field(description="the approved signature (签名) shown in the message")
    templates: dict[str, str] = Field(description="SMS template code by event kind (a template per event)")
    personal: ClassVar[bool] = True

    def address(self, contact: ContactLike | None, template: str, kind: str) -> Address:
        mobile = (contact.mobile if contact else None) or ""
        code = self.templates.get(template) or self.templates.get(kind, "")
        return Address(mobile, extra={"sms_template": code},
                       problem=("" if mobile else "没有手机号 (no mobile number)")
                       or ("" if code else f"no SMS template for {template}"))


Channel = Annotated[WecomChannel | DingtalkChannel | FeishuChannel | WebhookChannel | EmailChannel | SmsChannel,
                    Field(discriminator="type")]


class Rule(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    events: list[Kind] = Field(min_length=1, description="the case events it answers")
    categories: list[str] = Field(default_factory=list, description="empty: any")
    severities: list[str] = Field(default_factory=list, description="empty: any")
    units: list[str] = Field(default_factory=list, description="the unit told about is in one of these subtrees")
    to: list[Role] = Field(min_length=1, description="duty: who is on duty now; day: the day staff; leader: the "
                                                     "unit's leader; next_leader: the next level's duty leader; "
                                                     "unit: the unit's robot or webhook, no person")
    via: list[str] = Field(min_length=1, description="channel ids")
    after: Duration = Field(0.0, ge=0, description="send this long after the event, if the case's stage has not "
                                                   "moved on (签收, a reply) meanwhile: e.g. still red after 30m")
    template: str | None = Field(None, description="default: the event kind's (after > 0: still_red)")
    urgent: bool = Field(False, description="sent in quiet hours too")


class Quiet(Strict):
    start: str = Field("22:00", pattern=r"^\d\d:\d\d$")
    end: str = Field("07:00", pattern=r"^\d\d:\d\d$")


class NotifyFile(Strict):
    link: str = Field("http://127.0.0.1:8000/", description="the hub's address as phones reach it: links in "
                                                            "messages open the case there")
    quiet: Quiet | None = Field(None, description="not urgent notices wait for the end of these hours")
    max_attempts: int = Field(8, ge=1, le=100)
    lease: Duration = Field(60.0, gt=0, le=3600, description="a notice claimed for sending by a hub that died "
                                                             "before recording the outcome is sent again after this")
    channels: list[Channel] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    templates: dict[str, Template] = Field(default_factory=dict, description="by kind (or a rule's template "
                                                                            "name); defaults in Chinese")

    @model_validator(mode="after")
    def _ids(self) -> NotifyFile:
        if (c := first_repeat(c.id for c in self.channels)) is not None:
            raise ValueError(f"channel id {c!r} is used twice")
        if (r := first_repeat(r.id for r in self.rules)) is not None:
            raise ValueError(f"rule id {r!r} is used twice")
        return self


@dataclass
class Notify:
    """The policy in force: the file, its channels by id, templates compiled, and the secrets read."""

    spec: NotifyFile
    secrets: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    off: dict[str, str] = field(default_factory=dict)
    """Channels switched off because a secret's variable is not set: id -> the file's path and the variable."""

    @property
    def channels(self) -> dict[str, Any]:
        """The channels on (every secret set)."""
        return {c.id: c for c in self.spec.channels if c.id not in self.off}

    def quiet_times(self) -> tuple[time, time] | None:
        q = self.spec.quiet
        return (time.fromisoformat(q.start), time.fromisoformat(q.end)) if q else None

    def render(self, name: str, values: dict[str, str]) -> dict[str, Any]:
        t = self.templates.get(name) or self.templates[name.split(":")[0]]
        return {"title": t["title"].render(values), "text": t["text"].render(values),
                "line": t["line"].render(values), "sms": {k: v.render(values) for k, v in t["sms"].items()}}

    @classmethod
    def empty(cls) -> Notify:
        return _compiled(NotifyFile(), {}, [], Path("-"), None)


def _secret_fields(c: Any) -> list[str]:
    return [f for f in type(c).model_fields if f.endswith("_env") and getattr(c, f) is not None]


def _compiled(spec: NotifyFile, env: Any, problems: list[str], path: Path, src: YamlSource | None) -> Notify:
    templates: dict[str, dict[str, Any]] = {}
    for name, t in {**DEFAULT_TEMPLATES, **spec.templates}.items():
        parts: dict[str, Any] = {"sms": {}}
        for part, text in [("title", t.title), ("text", t.text), ("line", t.line),
                           *((f"sms.{k}", v) for k, v in t.sms.items())]:
            loc = ("templates", name, *part.split("."))
            try:
                unknown = sorted(meta.find_undeclared_variables(_env.parse(text)) - FIELDS.keys())
            except TemplateSyntaxError as exc:
                problems.append(problem(path, src, loc, f"template error: {exc.message}") if src else str(exc))
                continue
            if unknown:
                problems.append(problem(path, src, loc, f"unknown field {', '.join(map(repr, unknown))} (known: "
                                                        f"{', '.join(FIELDS)})") if src else f"{loc}: {unknown}")
                continue
            if part.startswith("sms."):
                parts["sms"][part[4:]] = _env.from_string(text)
            else:
                parts[part] = _env.from_string(text)
        templates[name] = parts
    secrets: dict[str, dict[str, str]] = {}
    off: dict[str, str] = {}
    for i, c in enumerate(spec.channels):
        secrets[c.id] = {}
        for f in _secret_fields(c):
            var = getattr(c, f)
            value = env.get(var)
            if not value:
                off.setdefault(c.id, problem(path, src, ("channels", i, f), f"environment variable {var} is not "
                                                                            f"set: channel {c.id!r} is off")
                               if src else f"{c.id}: {var} not set")
            else:
                secrets[c.id][f.removesuffix("_env")] = value
    return Notify(spec, {k: v for k, v in secrets.items() if k not in off}, templates, off)


def load_notify(path: Path, org: Org, env: Any = os.environ) -> Notify:
    """The policy, checked: channels' units and secrets, rules' channels, units and templates, every template's
    fields. A problem names the file, the path and the line; nothing of a refused file is used."""
    spec, src = load_sourced(NotifyFile, path)
    problems: list[str] = []
    notify = _compiled(spec, env, problems, path, src)
    known = {c.id for c in spec.channels}
    for i, c in enumerate(spec.channels):
        for j, u in enumerate(c.units):
            if u not in org.units:
                problems.append(problem(path, src, ("channels", i, "units", j), f"unit {u!r} is not in the org tree"))
        if isinstance(c, SmsChannel):
            for k in c.templates:
                if k not in (*KINDS, "still_red", "sign_in_code") and k not in spec.templates:
                    problems.append(problem(path, src, ("channels", i, "templates", k), f"no event or template {k!r}"))
    for i, r in enumerate(spec.rules):
        for j, ch in enumerate(r.via):
            if ch not in known:
                problems.append(problem(path, src, ("rules", i, "via", j), f"no channel {ch!r} (known: "
                                                                          f"{', '.join(sorted(known)) or 'none'})"))
        for j, u in enumerate(r.units):
            if u not in org.units:
                problems.append(problem(path, src, ("rules", i, "units", j), f"unit {u!r} is not in the org tree"))
        if r.template is not None and r.template not in notify.templates:
            problems.append(problem(path, src, ("rules", i, "template"), f"no template {r.template!r}"))
    if problems:
        raise ConfigError(problems)
    return notify
