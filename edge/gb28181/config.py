"""`configs/gb28181.yaml` as typed models: this upper platform's SIP identity, the devices and lower
platforms allowed to register, keepalive limits, where catalog channels go (civil code → grid), the broker
and the hub.

GB/T 28181 ids are 20 digits (§附录D 编码规则A): centre code (8, the administrative division), industry (2),
type (3: 111–130 front-end devices such as 132 IP camera, 118 NVR; 200 the central SIP server; 216 a virtual
organisation; 215 a business group), network (1), serial (6). The SIP domain (realm) is by custom the first 10
digits of the server id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge.config import HubConfig, MqttConfig
from gridwatch.core.config import Strict
from gridwatch.core.durations import Duration
from gridwatch.core.mqttlink import secret
from gridwatch.core.names import NAME
from gridwatch.core.yamlconf import load

GB_ID = r"^[0-9]{20}$"
Transport = Literal["udp", "tcp"]
TRANSPORTS: tuple[Transport, ...] = ("udp", "tcp")


class SipServer(Strict):
    id: str = Field(pattern=GB_ID, description="this platform's SIP server id (SIP服务器编号)")
    domain: str = Field(pattern=r"^[0-9]{10}$", description="the SIP domain (SIP服务器域), the realm of digest auth")
    host: str = Field("0.0.0.0", description="address to listen on")
    port: int = Field(5060, ge=0, le=65535, description="SIP port for UDP and TCP (0: any free one)")
    advertise: str | None = Field(None, description="address devices reach this server at (Via, Contact); "
                                                     "default: host, or 127.0.0.1 when host is 0.0.0.0")
    transports: list[Transport] = Field(default_factory=lambda: list(TRANSPORTS), min_length=1)
    password_env: str | None = Field(None, description="the access password (接入密码) of devices without one of "
                                                       "their own, from this environment variable")
    password: str | None = Field(None, description="demo only; prefer password_env")

    def secret(self) -> str | None:
        return secret(self.password_env, self.password)


class Device(Strict):
    """One IP camera, NVR or lower platform allowed to register."""

    id: str = Field(pattern=GB_ID)
    grid: str = Field(pattern=NAME.pattern, description="where it sits, and the grid of its channels whose "
                                                          "civil code maps to none")
    name: str = Field("", max_length=200)
    password_env: str | None = None
    password: str | None = Field(None, description="demo only; prefer password_env")
    catalog: bool = Field(True, description="query its catalog on registration and keep the registry current")
    subscribe: list[Literal["alarm", "catalog"]] = Field(
        default_factory=list, description="SUBSCRIBE to its alarms and/or catalog changes (GB/T 28181-2016 §9.11), "
                                          "for platforms that send them only to subscribers; renewed before expiry")
    subscribe_expires: int = Field(3600, ge=60, le=86_400)

    def secret(self) -> str | None:
        return secret(self.password_env, self.password)


class Stream(Strict):
    """A channel whose video the gateway pulls (INVITE) and samples into frames for the video rules. Only the
    channels listed here are pulled: a platform of 10,000 channels is not played all at once."""

    channel: str = Field(pattern=GB_ID)
    sample_every: Duration = Field(2.0, gt=0, le=3600, description="one published frame per this long")
    width: int = Field(640, ge=64, le=3840, description="published frames are scaled to this width (never up)")
    jpeg_quality: int = Field(80, ge=10, le=100)
    transport: Transport = Field("udp", description="RTP over UDP, or over TCP with the device connecting "
                                                    "(TCP passive, GB/T 28181-2016 §4.2.3)")
    offline_after: Duration = Field(20.0, gt=0, description="no frame for this long: the channel is `offline` and "
                                                            "the stream is asked for again")


class Keepalive(Strict):
    interval: Duration = Field(60.0, gt=0, description="the devices' keepalive period (心跳周期; 60 s by default "
                                                         "in GB/T 28181-2016 §9.6)")
    misses: int = Field(3, ge=1, le=100, description="this many periods without one: offline (心跳超时次数)")


class Registration(Strict):
    min_expires: int = Field(60, ge=10, description="a shorter Expires is answered 423 Interval Too Brief")
    max_expires: int = Field(86_400, ge=60, description="a longer one is granted this long")
    per_source: float = Field(20.0, gt=0, description="REGISTERs per second taken from one address (a flood "
                                                      "beyond is refused and counted)")
    nonce_ttl: Duration = Field(300.0, ge=10, le=86_400, description="how long a digest challenge's nonce is good "
                                "for; a device answering an older one is challenged again with stale=TRUE")


class Limits(Strict):
    max_message: int = Field(65_536, ge=1024, le=1 << 20)
    max_tcp_connections: int = Field(20_000, ge=1)


class GbGatewayConfig(Strict):
    sip: SipServer
    devices: list[Device] = Field(min_length=1)
    keepalive: Keepalive = Field(default_factory=Keepalive)
    registration: Registration = Field(default_factory=Registration)
    streams: list[Stream] = Field(default_factory=list, description="channels to pull video from")
    civil_codes: dict[str, str] = Field(default_factory=dict, description="civil code (行政区划) prefix → grid: a "
                                        "channel goes to the grid of the longest prefix of its CivilCode")
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    client_id: str = Field("gridwatch-gb28181", pattern=NAME.pattern)
    hub: HubConfig | None = Field(None, description="catalog channels are written into this hub's device registry "
                                                    "(a key with the operator role for their grids)")
    metrics_port: int | None = Field(None, ge=0, le=65535)
    limits: Limits = Field(default_factory=Limits)
    snapshots: bool = Field(True, description="on an alarm, INVITE the channel for a moment and add its first "
                            "frame to the case the alarm opened (needs `hub:`)")
    guard_poll: float = Field(2.0, ge=0, le=3600, description="seconds between readings of the hub's 布防/撤防 "
                              "and 视频复核 looks (`GET /api/v1/devices/guards`, `GET /api/v1/looks`, needs `hub:`); "
                              "0: not read")
    clips: bool = Field(True, description="on an alarm, the channel's own recording from `clip_before` seconds before "
                        "to `clip_after` after (RecordInfo, then a Download INVITE) added to the case as MP4 "
                        "(needs `hub:`)")
    clip_before: float = Field(10.0, ge=1, le=120)
    clip_after: float = Field(5.0, ge=0, le=120)
    look_settle: float = Field(3.0, ge=0, le=60, description="视频复核: seconds a camera is given to reach a preset "
                               "before its picture is taken (a dome's full turn is 1-3 s)")
    grid: str | None = Field(None, pattern=NAME.pattern, description="the grid the gateway's own status is "
                             "published in (its will `offline` speaks for every device it watches); default: "
                             "the first device's")

    @property
    def own_grid(self) -> str:
        return self.grid or self.devices[0].grid

    @model_validator(mode="after")
    def _check(self) -> GbGatewayConfig:
        seen: set[str] = set()
        for d in self.devices:
            if d.id in seen:
                raise ValueError(f"device {d.id} is listed twice")
            seen.add(d.id)
            if d.secret() is None and self.sip.secret() is None:
                raise ValueError(f"device {d.id} has no password and sip has no password for all: a device must "
                                 f"authenticate")
        for grid in self.civil_codes.values():
            if not NAME.match(grid):
                raise ValueError(f"civil_codes: grid {grid!r} must match {NAME.pattern}")
        if self.registration.min_expires > self.registration.max_expires:
            raise ValueError("registration.min_expires is above registration.max_expires")
        return self

    def grid_of(self, civil_code: str, default: str) -> str:
        best = ""
        for prefix in self.civil_codes:
            if civil_code.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        return self.civil_codes[best] if best else default


def load_gb_config(path: str | Path) -> GbGatewayConfig:
    return load(GbGatewayConfig, path)
