"""Notices under test (issue 26): the people of grid-01 and community-11 with their contact points, their
rosters, a notification policy on every channel pointed at the emulators (simulators.notify_emulators), and
an SLA whose gas policy runs on working time."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from hub.config import HubConfig, hash_key
from tests.hubkit import ROOT

SECRETS = {"GW_T_WECOM_G01": "wecom-key-g01", "GW_T_DING_TOKEN": "ding-token-c11", "GW_T_DING_SECRET": "SECc11secret",
           "GW_T_FEISHU_HOOK": "feishu-hook-s1", "GW_T_FEISHU_SECRET": "feishu-secret-s1",
           "GW_T_HOOK_SECRET": "city-12345-secret", "GW_T_AK_ID": "LTAI-test-id", "GW_T_AK_SECRET": "ak-test-secret",
           "GW_T_SMTP_USER": "hub", "GW_T_SMTP_PASSWORD": "mail-password"}
"""Test-only secrets, given to the hub through its environment and to the emulators as what they expect."""

PEOPLE = [  # username, name, unit, mobile, email, wecom id
    ("g01.day1", "张三", "grid-01", "13800000001", "day1@grid.example", "zhangsan"),
    ("g01.day2", "李四", "grid-01", "13800000002", "day2@grid.example", "lisi"),
    ("g01.night1", "王五", "grid-01", "13800000003", "night1@grid.example", "wangwu"),
    ("g01.night2", "赵六", "grid-01", "13800000004", "night2@grid.example", "zhaoliu"),
    ("g01.holiday", "孙七", "grid-01", "13800000005", "holiday@grid.example", "sunqi"),
    ("g01.leader", "周八", "grid-01", "13800000006", "leader@grid.example", "zhouba"),
    ("c11.duty", "吴九", "community-11", "13800000007", "duty@c11.example", "wujiu"),
    ("c11.leader1", "郑十", "community-11", "13800000008", "leader1@c11.example", "zhengshi"),
    ("c11.leader2", "钱十一", "community-11", "13800000009", "leader2@c11.example", "qianshiyi"),
]
MOBILE = {u: m for u, _, _, m, _, _ in PEOPLE}

ROSTERS = {"rosters": [
    {"unit": "grid-01", "calendar": "cn-mainland", "day": ["g01.day1", "g01.day2"],
     "night": {"every": "day", "start": "2026-11-30", "people": ["g01.night1", "g01.night2"]},
     "holiday": {"every": "day", "start": "2027-01-01", "people": ["g01.holiday"]}, "leader": "g01.leader"},
    {"unit": "community-11", "calendar": "cn-mainland", "day": ["c11.duty"],
     "night": {"every": "week", "start": "2026-11-30", "people": ["c11.duty"]},
     "leader": {"every": "week", "start": "2026-11-30", "people": ["c11.leader1", "c11.leader2"]}},
]}

SLA = {"policies": [
    {"id": "gas-working-time", "match": {"categories": ["gas_leak"]}, "calendar": "cn-mainland",
     "limits": {"accept": "1h", "resolve": "1d", "feedback": "1d"}},
    {"id": "fire-fast", "match": {"categories": ["fire"]}, "calendar": "24x7",  # red in 20 s: real processes
     "limits": {"accept": "20s", "resolve": "1h", "feedback": "1h"}},
    {"id": "storm", "match": {"categories": ["intrusion"]}, "calendar": "24x7",
     "limits": {"accept": "10m", "resolve": "1h", "feedback": "1h"}},
    {"id": "default", "calendar": "24x7", "limits": {"accept": "1h", "resolve": "1d", "feedback": "1d"}},
]}


def emulator_spec(tmp: Path, pki: Path | None = None, **more: Any) -> dict[str, Any]:
    s = SECRETS
    spec: dict[str, Any] = {"wecom_keys": [s["GW_T_WECOM_G01"]],
                            "dingtalk": {s["GW_T_DING_TOKEN"]: s["GW_T_DING_SECRET"]},
                            "feishu": {s["GW_T_FEISHU_HOOK"]: s["GW_T_FEISHU_SECRET"]},
                            "webhook_secret": s["GW_T_HOOK_SECRET"], "aliyun": {s["GW_T_AK_ID"]: s["GW_T_AK_SECRET"]},
                            **more}
    if pki is not None:
        spec["smtp"] = {"cert": str(pki / "server.pem"), "key": str(pki / "server.key"),
                        "user": s["GW_T_SMTP_USER"], "password": s["GW_T_SMTP_PASSWORD"]}
    return spec


def notify_policy(http_port: int, smtp_port: int | None, ca: Path | None, link: str, **rule_more: Any) -> dict:
    base = f"http://127.0.0.1:{http_port}"
    channels: list[dict[str, Any]] = [
        {"id": "sms", "type": "sms", "endpoint": f"{base}/", "access_key_id_env": "GW_T_AK_ID",
         "access_key_secret_env": "GW_T_AK_SECRET", "sign_name": "和平网格", "timeout": 1,
         "templates": {"opened": "SMS_100001", "red": "SMS_100002", "still_red": "SMS_100003",
                       "escalated": "SMS_100004"}},
        {"id": "wecom-g01", "type": "wecom", "url": f"{base}/cgi-bin/webhook/send", "key_env": "GW_T_WECOM_G01",
         "units": ["grid-01"], "group_wait": 1, "timeout": 1},
        {"id": "ding-c11", "type": "dingtalk", "url": f"{base}/robot/send", "token_env": "GW_T_DING_TOKEN",
         "secret_env": "GW_T_DING_SECRET", "units": ["community-11"], "group_wait": 0, "timeout": 1},
        {"id": "feishu-s1", "type": "feishu", "url": f"{base}/open-apis/bot/v2/hook/", "hook_env": "GW_T_FEISHU_HOOK",
         "secret_env": "GW_T_FEISHU_SECRET", "units": ["street-1"], "group_wait": 0, "timeout": 1},
        {"id": "city-12345", "type": "webhook", "url": f"{base}/webhook", "secret_env": "GW_T_HOOK_SECRET",
         "timeout": 1},
    ]
    rules: list[dict[str, Any]] = [
        {"id": "new-case", "events": ["opened", "dispatched"], "categories": ["gas_leak"], "to": ["duty"],
         "via": ["sms", "wecom-g01"], "urgent": True},
        {"id": "red", "events": ["red"], "categories": ["gas_leak", "fire"], "to": ["duty", "leader"],
         "via": ["sms", "ding-c11"], "urgent": True},
        {"id": "still-red", "events": ["red"], "categories": ["gas_leak"], "after": "10m", "to": ["next_leader"],
         "via": ["sms"], "urgent": True},
        {"id": "fire-still-red", "events": ["red"], "categories": ["fire"], "after": "10s", "to": ["next_leader"],
         "via": ["sms"], "urgent": True},
        {"id": "escalated", "events": ["escalated"], "to": ["duty"], "via": ["feishu-s1"], "urgent": True},
        {"id": "city", "events": ["red"], "categories": ["gas_leak"], "to": ["unit"], "via": ["city-12345"]},
        {"id": "storm", "events": ["red"], "categories": ["intrusion"], "to": ["unit"], "via": ["wecom-g01"]},
    ]
    if smtp_port is not None:
        channels.append({"id": "mail", "type": "email", "host": "127.0.0.1", "port": smtp_port, "starttls": True,
                         "ca_file": str(ca), "username_env": "GW_T_SMTP_USER", "password_env": "GW_T_SMTP_PASSWORD",
                         "sender": "gridwatch@district.example", "timeout": 5})
        rules[2]["via"] = ["sms", "mail"]
    for r in rules:
        r.update(rule_more.get(r["id"], {}))
    return {"link": link, "quiet": {"start": "22:00", "end": "07:00"}, "channels": channels, "rules": rules}


def write_configs(tmp: Path, policy: dict) -> dict[str, str]:
    """rosters.yaml, notify.yaml and sla.yaml in tmp; the hub.yaml entries naming them."""
    (tmp / "rosters.yaml").write_text(yaml.safe_dump(ROSTERS, allow_unicode=True), encoding="utf-8")
    (tmp / "notify.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    (tmp / "sla.yaml").write_text(yaml.safe_dump(SLA), encoding="utf-8")
    return {"rosters": str(tmp / "rosters.yaml"), "notify": str(tmp / "notify.yaml"), "sla": str(tmp / "sla.yaml")}


def seed_people(database: str) -> None:
    """The people of PEOPLE, with their contact points, in the hub's database (migrated first)."""
    from hub.boot.store import open_store
    from hub.people.accounts import People

    cfg = HubConfig.model_validate({"database": database, "keys": [{"name": "x", "role": "admin",
                                                                    "hash": hash_key("unused")}]})
    store = open_store(cfg.resolved(ROOT / "configs"))
    people = People(store, [])
    for u, name, unit, mobile, email, wecom in PEOPLE:
        people.add(u, name, unit, "operator", "Duty-2026-" + u[::-1])  # (not containing the username)
        people.set_contacts(u, mobile=mobile, email=email, wecom_user=wecom, dingtalk_mobile=mobile)
    store.engine.dispose()


def make_pki(d: Path) -> Path:
    """A CA and a certificate it signed for 127.0.0.1 (Debian's openssl), for the SMTP server's STARTTLS."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gridwatch test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out",
        "server.csr")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "san.ext", "-out", "server.pem")
    return d
