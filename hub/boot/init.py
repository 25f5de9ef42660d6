"""`gridwatch hub init DIR`: a new hub configuration with its own keys and a first administrator.

The org tree, SLA policies, routing, labels, calendars, people, rosters and notification policy of the shipped
example (`gridwatch.examples`, the repository's `configs/`) are copied to be edited, and notices are on: the
people the rosters name are made at the first start (`people.yaml`), and the channels whose secrets are set
in the environment send; hub.yaml is written fresh with new random API keys
(an administrator's and one agent's), stored only as hashes. The database is migrated to the newest
revision and the first administrator account is made with a random password. Every secret is printed once,
by the caller, and kept nowhere in plain text.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from gridwatch import __version__
from hub.config import hash_key, load_hub_config
from hub.policy.errors import Conflict

COPIED = ("org.yaml", "sla.yaml", "routing.yaml", "labels.yaml", "rosters.yaml", "notify.yaml", "people.yaml")
DEFAULT_DB = "sqlite:///var/hub.sqlite"

HUB_YAML = """\
# gridwatch 中枢配置 (hub), made by `gridwatch hub init` on {today} (gridwatch {version}).
# Relative paths resolve against this file's directory. Check: gridwatch hub check -c {path}
# Keys are stored as hashes only; their plain text was printed once by `hub init`.
# New keys: `gridwatch hub hash-key`; more people and keys: the board's 人员 page (admin) or the API.
database: {database}   # PostgreSQL: postgresql+psycopg://gridwatch@/gridwatch (then `gridwatch hub migrate`)
listen: {{host: 127.0.0.1, port: 8080}}   # behind a reverse proxy; or tls_cert / tls_key to serve https
org: org.yaml           # 组织架构: district, streets, communities, grids, departments
sla: sla.yaml           # 挂单计时: limits of each stage, lights, escalation
routing: routing.yaml   # 分拣分拨: which department handles which kind of case
calendars: calendars    # 工作日历: working days and holidays by year (gridwatch hub calendar show|import)
labels: labels.yaml     # display names (中文, English) of categories and other codes
people: people.yaml     # 值班人员: the people rosters name, made at start when missing, with their contact points
rosters: rosters.yaml   # 值班表: who is on duty, in and out of working hours, and the leaders
notify: notify.yaml     # 通知: SMS, WeCom, DingTalk, Feishu, mail, webhooks; a channel whose secret variables are
                        # not set is off (said at start, by `hub check`, and in /metrics)
tz: Asia/Shanghai
keys:   # administrator keys are for machines on these addresses (scripts on this host); people sign in
  - {{name: admin, role: admin, hash: "{admin_hash}", sources: [127.0.0.1/32, "::1/128"]}}
  - {{name: {edge}, role: edge, hash: "{edge_hash}"}}
sign_in:                      # 身份鉴别 (等保 2.0 三级): sessions, the second factor, passwords
  session_idle: 30m           # a session unused this long ends
  session_max: 12h            # and every session ends this long after sign-in
  two_factor: [admin, operator]   # roles that give a TOTP code after the password (enrolled at first sign-in)
  password_min: 10            # and three character classes, and not guessable (zxcvbn with Chinese words)
  password_max_age: 90d       # a password older than this is changed at the next sign-in
  admin_key_sources: require  # every administrator key names the machines it may be used from
"""


@dataclass(frozen=True)
class Made:
    """What `init` made; the plain secrets are for printing once."""

    config: Path
    database: str
    revision: str
    admin_user: str
    admin_password: str
    admin_key: str
    edge_name: str
    edge_key: str


def examples() -> Path:
    """The shipped configs (in a wheel: package data; in a checkout: configs/ through the link)."""
    import gridwatch

    return Path(gridwatch.__file__).resolve().parent / "examples"


def init_hub(dest: Path, *, database: str | None = None, admin: str = "admin", edge: str = "edge-1",
             today: date | None = None) -> Made:
    """Write the configuration into `dest`, migrate its database and make the first administrator.
    Refuses (Conflict) when `dest` already holds a hub.yaml: nothing is overwritten."""
    config = dest / "hub.yaml"
    if config.exists():
        raise Conflict(f"{config} exists; hub init does not overwrite a configuration", "exists")
    src = examples()
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copyfile(src / name, dest / name)
    (dest / "calendars").mkdir(exist_ok=True)
    for cal in sorted((src / "calendars").glob("*.yaml")):
        shutil.copyfile(cal, dest / "calendars" / cal.name)
    db = database or DEFAULT_DB
    if db == DEFAULT_DB:
        (dest / "var").mkdir(exist_ok=True)
    admin_key, edge_key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    text = HUB_YAML.format(today=(today or date.today()).isoformat(), version=__version__, path=config,
                           database=db, admin_hash=hash_key(admin_key), edge=edge, edge_hash=hash_key(edge_key))
    tmp = config.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o640)
    tmp.replace(config)

    from hub.boot.store import open_store
    from hub.people.accounts import People
    from hub.store.db import current_revision

    cfg = load_hub_config(config)
    store = open_store(cfg)
    try:
        password = secrets.token_urlsafe(12) + "-Aa1"  # (three classes whatever the random part holds)
        People(store, cfg.keys).add(admin, "系统管理员", None, "sysadmin", password)
        rev = current_revision(store.engine) or "?"
    finally:
        store.engine.dispose()
    return Made(config, cfg.database, rev, admin, password, admin_key, edge, edge_key)
