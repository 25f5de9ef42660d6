"""The hub's config file (`configs/hub.yaml`) and API keys (stored hashed)."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from gridwatch.core.config import Strict
from gridwatch.core.durations import Duration
from gridwatch.core.mqttlink import BrokerLink
from gridwatch.core.yamlconf import YamlSource, load_sourced

Role = Literal["edge", "operator", "viewer", "admin", "sysadmin", "secadmin", "auditor"]
"""`admin` is a machine's key (automation bound to its sources); people who administer have one of the three
separated roles (三权分立, issue 42): `sysadmin` accounts, units and the fleet; `secadmin` keys, lockouts and second
factors; `auditor` the audit trail, read only."""
ADMINS: tuple[Role, ...] = ("sysadmin", "secadmin", "auditor")
"""The administrator roles of people: no unit, always a second factor."""


def hash_key(key: str) -> str:
    """Keys are random tokens of high entropy, so a plain SHA-256 is enough to keep them out of the file."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class ApiKey(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    role: Role
    unit: str | None = Field(None, description="operators and viewers: the unit whose subtree they see")
    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="hash_key(key); `gridwatch hub hash-key`")
    grids: list[str] | None = Field(None, description="edge keys: the grids whose alerts this agent may send "
                                                      "(others are rejected); none = every grid")
    sources: list[str] | None = Field(None, description="addresses or networks the key may be used from (the "
                                      "client as the guard tells it, behind trusted proxies); none = any. An "
                                      "administrator key of a machine is bound to its addresses in place of a "
                                      "second factor")

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _networks(v)

    def allows(self, client: str) -> bool:
        """May this key be used from this client address?"""
        if self.sources is None:
            return True
        import ipaddress

        try:
            ip = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(n, strict=False) for n in self.sources)

    @model_validator(mode="after")
    def _unit(self) -> ApiKey:
        if self.role in ("operator", "viewer") and self.unit is None:
            raise ValueError(f"a {self.role} key needs a unit")
        if self.grids is not None and self.role != "edge":
            raise ValueError("grids goes with edge keys")
        return self

    def matches(self, key: str) -> bool:
        return hmac.compare_digest(self.hash, hash_key(key))


class Listen(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tls_cert: Path | None = Field(None, description="serve https with this certificate (PEM, chain included)")
    tls_key: Path | None = Field(None, description="the certificate's private key (PEM)")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="addresses or networks of reverse proxies in front of the hub; behind "
        "them the client is the last X-Forwarded-For address that is not a proxy (wrong-key limits are per client)")

    frame_ancestors: list[str] = Field(
        default_factory=list, description="origins that may frame the board (CSP frame-ancestors), e.g. a "
        "command center's portal https://portal.example.gov.cn; none = no page may (clickjacking)")

    ops_networks: list[str] = Field(
        default_factory=list, description="networks whose clients read /metrics, /openapi.json, /docs and /redoc "
        "without a key (a scraper's, e.g. 10.0.8.0/24); everyone else needs a key or a session of the hub")

    @field_validator("trusted_proxies", "ops_networks")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        return _networks(v)

    @field_validator("frame_ancestors")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for text in v:
            if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|'self'", text):
                raise ValueError(f"{text!r} is not an origin (https://host[:port]) or 'self'")
        return v


def _networks(v: list[str]) -> list[str]:
    import ipaddress

    for text in v:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or network") from None
    return v

    @model_validator(mode="after")
    def _pair(self) -> Listen:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


class HubMqtt(BrokerLink):
    """The broker link (`gridwatch.core.mqttlink.BrokerLink`, as the agent's `mqtt`) of the case-event
    publisher."""

    client_id: str = Field("gridwatch-hub", description="prefix: each process connects as <client_id>-<random>")
    topic_root: str = "gw"


class HubLimits(Strict):
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="larger request bodies get 413 unread "
                                "(the forwarder then halves its batches)")
    max_photo_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="a photo attached to a case (JPEG, PNG, "
                                 "WebP): larger ones get 413")
    max_clip_bytes: int = Field(12 * 1024 * 1024, ge=1024, description="a recorded clip (MP4) attached to a case by "
                                "a gateway: larger ones get 413 (within max_body_bytes)")
    auth_failures: int = Field(20, ge=1, description="wrong keys a client may present per auth_window")
    auth_window: float = Field(60.0, gt=0, description="seconds; past auth_failures the client gets 429")
    account_failures: int = Field(10, ge=1, le=1000, description="wrong passwords in a row that lock an account, "
                                  "from whatever addresses they come")
    account_lock: Duration = Field(900.0, gt=0, description="the first lock; each next one without a right "
                                   "password between doubles, up to a day (an administrator may unlock)")
    intake_rate: float = Field(5000.0, gt=0, description="alerts per second each edge key may send (429 past it)")
    intake_burst: float = Field(20000.0, ge=1, description="alerts an edge key may send at once")
    stream_queue: int = Field(1000, ge=1, le=100_000, description="events a stream client may fall behind "
                              "before it is dropped (it resumes with Last-Event-ID)")


class SignIn(Strict):
    """How people sign in (issue 30): sessions, the second factor, the password policy."""

    session_max: Duration = Field(43200.0, gt=0, description="a session ends this long after sign-in, in use or not")
    session_idle: Duration = Field(1800.0, gt=0, description="a session unused this long ends (the idle timeout)")
    two_factor: list[Literal["admin", "operator", "viewer"]] = Field(
        ["admin", "operator"], description="roles that sign in with a second factor (TOTP, RFC 6238, or a code "
        "by SMS); until they enrol, their session reaches nothing but the enrolment (operators too by default: "
        "they dispatch and close cases). The administrators (sysadmin, secadmin, auditor) "
        "always do; `admin` here means them")
    password_min: int = Field(10, ge=8, le=128, description="the shortest password accepted")
    password_max_age: Duration | None = Field(None, gt=0, description="a password older than this must be "
                                              "changed at the next sign-in (none: passwords do not expire)")
    admin_key_sources: Literal["warn", "require"] = Field(
        "warn", description="an administrator key without `sources`: said at start (warn) or refused (require)")


class FleetSettings(Strict):
    heartbeat_limit: Duration = Field(45.0, description="an agent silent this long opens one agent_offline case "
                                                        "and its devices' state becomes unknown")
    captures: Path = Field(Path("../var/captures"), description="recorded traffic (JSONL captures, as "
                                                               "`record:` writes them) that drafts are backtested on")
    map_tiles: str | None = Field(None, description="a tile server of the deployment's own, "
                                  "`https://tiles.example/{z}/{x}/{y}.png`; none: the map is drawn from "
                                  "coordinates alone, with no outside fetch")


class Syslog(Strict):
    """Where every audit record is also sent (RFC 5424 messages; RFC 5425 TLS or RFC 6587 TCP with octet
    counting, or RFC 5426 UDP)."""

    host: str = Field(min_length=1)
    port: int = Field(6514, ge=1, le=65535, description="6514 is syslog over TLS; 514 plain TCP or UDP")
    transport: Literal["tls", "tcp", "udp"] = "tls"
    ca_file: Path | None = Field(None, description="the CA that signed the collector's certificate (TLS; none: "
                                                   "the system's)")
    app_name: str = Field("gridwatch-hub", pattern=r"^[!-~]{1,48}$")


class AuditSettings(Strict):
    """The audit trail's key and where its records also go (issue 42)."""

    key_file: Path | None = Field(None, description="the key the chain's HMAC is made with, when "
                                  "GRIDWATCH_AUDIT_KEY(S) is not set (made at first start, mode 0600); none: "
                                  "audit.key beside the data key")
    mac: Literal["hmac-sha256", "hmac-sm3"] = Field("hmac-sha256", description="hmac-sm3: 国密 SM3 (GB/T "
                                                    "32905) for the chain")
    syslog: Syslog | None = Field(None, description="forward every record to a log server (kept in order and "
                                  "resent from where it stopped while the server is away)")


class HubConfig(Strict):
    database: str = Field("sqlite:///../var/hub.sqlite", description="SQLAlchemy URL; relative SQLite paths "
                                                                     "resolve against this file's directory")
    listen: Listen = Field(default_factory=Listen)
    org: Path = Path("org.yaml")
    sla: Path = Path("sla.yaml")
    routing: Path | None = Field(None, description="routing.yaml (分拣分拨): functional departments, joint handling, "
                                                   "manual dispatch; none: every case goes up its grid's chain")
    calendars: Path = Path("calendars")
    notify: Path | None = Field(None, description="notify.yaml: which events tell whom on which channel (WeCom, "
                                                  "DingTalk, Feishu, SMS, email, webhooks), and the templates")
    rosters: Path | None = Field(None, description="rosters.yaml (值班表): who of each unit is on duty, in and out "
                                                   "of working hours, and its leader")
    people: Path | None = Field(None, description="people.yaml (值班人员): accounts the rosters name, made at start "
                                                  "when missing, with their contact points")
    data_key_file: Path | None = Field(None, description="where the key sealing contact points is kept when "
                                       "GRIDWATCH_DATA_KEY(S) is not set (made at first start, mode 0600); none: "
                                       "data.key beside the SQLite database, or var/data.key beside this file")
    audit: AuditSettings = Field(default_factory=lambda: AuditSettings())
    audit_retention_days: float = Field(180.0, ge=1, description="audit records older than this are pruned daily "
                                        "(等保 asks for at least 180; a shorter one is warned about at start)")
    labels: Path | None = Field(None, description="display names (zh-CN, English) of categories and other codes, "
                                                  "on top of the built-in ones (see configs/labels.yaml)")
    tz: str = "Asia/Shanghai"
    keys: list[ApiKey] = Field(min_length=1)
    mqtt: HubMqtt | None = Field(None, description="publish case events on <topic_root>/cases/<unit>")
    limits: HubLimits = Field(default_factory=lambda: HubLimits())
    sign_in: SignIn = Field(default_factory=lambda: SignIn())
    fleet: FleetSettings = Field(default_factory=lambda: FleetSettings())
    unknown_grids: Literal["district", "reject"] = Field(
        "district", description="an alert from a grid not in the org tree: open its case at the district with "
                                "a note, or reject the alert")

    @model_validator(mode="after")
    def _admin_keys(self) -> HubConfig:
        if self.sign_in.admin_key_sources == "require":
            loose = [k.name for k in self.keys if k.role == "admin" and k.sources is None]
            if loose:
                raise ValueError(f"administrator keys without sources: {', '.join(loose)} (sign_in.admin_key_sources "
                                 "is require: bind each to its machines' addresses)")
        return self

    def resolved(self, base: Path) -> HubConfig:
        def fix(p: Path) -> Path:
            return p if p.is_absolute() else (base / p).resolve()
        db = self.database
        if db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
            db = "sqlite:///" + str(fix(Path(db.removeprefix("sqlite:///"))))
        listen = self.listen
        if listen.tls_cert is not None and listen.tls_key is not None:
            listen = listen.model_copy(update={"tls_cert": fix(listen.tls_cert), "tls_key": fix(listen.tls_key)})
        mqtt = self.mqtt
        if mqtt is not None and mqtt.tls is not None:
            mqtt = mqtt.model_copy(update={"tls": mqtt.tls.resolved(fix)})
        fleet = self.fleet.model_copy(update={"captures": fix(self.fleet.captures)})
        if self.data_key_file is not None:
            data_key = fix(self.data_key_file)
        elif db.startswith("sqlite:///") and ":memory:" not in db:  # beside the database: one key per database
            data_key = Path(db.removeprefix("sqlite:///")).parent / "data.key"
        else:
            data_key = (base / "var" / "data.key").resolve()
        syslog = self.audit.syslog
        if syslog is not None and syslog.ca_file is not None:
            syslog = syslog.model_copy(update={"ca_file": fix(syslog.ca_file)})
        audit = self.audit.model_copy(update={"syslog": syslog, "key_file": fix(self.audit.key_file)
                                              if self.audit.key_file is not None else data_key.parent / "audit.key"})
        return self.model_copy(update={"database": db, "org": fix(self.org), "sla": fix(self.sla),
                                       "routing": fix(self.routing) if self.routing is not None else None,
                                       "calendars": fix(self.calendars), "listen": listen,
                                       "labels": fix(self.labels) if self.labels is not None else None, "mqtt": mqtt,
                                       "notify": fix(self.notify) if self.notify is not None else None,
                                       "rosters": fix(self.rosters) if self.rosters is not None else None,
                                       "people": fix(self.people) if self.people is not None else None,
                                       "fleet": fleet, "data_key_file": data_key, "audit": audit})


def load_hub_config(path: str | Path) -> HubConfig:
    return load_hub_config_sourced(path)[0]


def load_hub_config_sourced(path: str | Path) -> tuple[HubConfig, YamlSource]:
    """The config with its paths resolved against its directory, and the source read (for `hub check`'s lines)."""
    cfg, src = load_sourced(HubConfig, path)
    return cfg.resolved(Path(path).resolve().parent), src
