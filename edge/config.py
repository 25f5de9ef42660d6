"""The edge agent's config file (`configs/edge.yaml`) as typed models.

Relative paths in the file are resolved against the directory of the file itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge.feeds.spec import FeedEntry, FeedSpec, expand_entry
from edge.sensors.common import Limits
from gridwatch.core.config import Strict
from gridwatch.core.durations import Duration
from gridwatch.core.kinds import FeedKind
from gridwatch.core.mqttlink import BrokerLink, secret
from gridwatch.core.names import NAME
from gridwatch.core.yamlconf import load


class MqttConfig(BrokerLink):
    """The broker link (`gridwatch.core.mqttlink.BrokerLink`: host, port, protocol, login, TLS) and the
    agent's subscription."""

    client_id: str | None = Field(None, description="defaults to gridwatch-<edge_id>")
    session_expiry: Duration = Field(3600.0, description="broker keeps the session (and queued readings) this long")
    receive_maximum: int = Field(1000, ge=1, le=65535, description="unacknowledged QoS 1 messages in flight")
    topic_root: str = Field("gw", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    share_group: str | None = Field(None, description="join $share/<group>/... (MQTT v5 shared subscription)")
    qos: Literal[0, 1] = 1


class DeviceEntry(Strict):
    id: str = Field(pattern=NAME.pattern)
    grid: str = Field(pattern=NAME.pattern)
    kind: FeedKind = "sensor"
    gateway: str | None = Field(None, description="the gateway (feed group, Sparkplug node, availability "
                                                  "gateway) the device sits behind; its offline marks the device "
                                                  "offline")


class DevicesConfig(Strict):
    strict: bool = Field(False, description="reject messages from devices not in `list`")
    known: list[DeviceEntry] = Field(default_factory=list, alias="list")


class LimitsConfig(Strict):
    max_payload_bytes: int = Field(65536, ge=64)
    max_future_skew: Duration = Field(300.0, description="device time further ahead is rejected (ts_in_future)")
    clock_tolerance: Duration = Field(
        5.0, description="device time ahead of the receive clock by more than this (but within max_future_skew) is "
                         "replaced by the receive time, so one reading from the future cannot make a device's next "
                         "readings look out of order")
    max_metrics: int = Field(64, ge=1)
    max_devices: int = Field(50_000, ge=1, description="devices an agent keeps state for; new ones past it are "
                                                       "refused (device_cap)")
    max_frame_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="largest camera/thermal frame accepted")
    max_frame_pixels: int = Field(3840 * 2160, ge=64, description="largest width x height accepted")
    work_width: int = Field(320, ge=64, le=1920, description="camera frames are analysed at about this width")

    def limits(self) -> Limits:
        return Limits(self.max_payload_bytes, self.max_future_skew, self.clock_tolerance, self.max_metrics,
                      self.max_frame_bytes, self.max_frame_pixels, self.work_width)


class OutboxConfig(Strict):
    path: Path = Path("../var/edge-outbox.sqlite")
    synchronous: Literal["full", "normal"] = Field("full", description="full survives power loss, normal a crash")


class HubConfig(Strict):
    url: str = "http://127.0.0.1:8080"
    key: str | None = Field(None, description="demo only; prefer key_env")
    key_env: str | None = "GRIDWATCH_EDGE_KEY"
    batch_size: int = Field(200, ge=1, le=5000)
    timeout: Duration = 10.0
    backoff_min: Duration = 0.5
    backoff_max: Duration = 30.0
    ca_file: Path | None = Field(None, description="CA bundle that signed an https:// hub's certificate "
                                                   "(default: the system's trust store)")
    heartbeat: Duration | None = Field(15.0, description="send the agent's state to the hub this often "
                                                         "(the hub's watchdog opens agent_offline when it stops); "
                                                         "null: never")
    fleet: bool = Field(False, description="run the rule set the hub deploys to this agent's grids and take its "
                                           "grids' devices from the hub's registry (both kept in the outbox, so "
                                           "the agent starts without the hub); the rule file serves until the "
                                           "hub deploys one")

    def secret(self) -> str | None:
        return secret(self.key_env, self.key)


class InfluxConfig(Strict):
    url: str
    token: str = ""
    org: str = "gridwatch"
    bucket: str = "gridwatch"
    batch_size: int = Field(5000, ge=1)
    flush_interval: Duration = 1.0


class RecordConfig(Strict):
    path: Path
    max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    backups: int = Field(5, ge=0)


class MetricsConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65535, description="0 picks a free port")


class EdgeConfig(Strict):
    edge_id: str = Field("edge-a", pattern=NAME.pattern)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    grids: list[str] = Field(default_factory=list, description="grids this agent owns; empty = all")
    rules: Path = Path("rules.yaml")
    feeds: list[FeedEntry] = Field(
        default_factory=lambda: [FeedEntry({"preset": "gridwatch"})],
        description="topics and payload mappings (presets or plain feeds); default: the native contract")
    devices: DevicesConfig = Field(default_factory=DevicesConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    hub: HubConfig = Field(default_factory=HubConfig)
    influx: InfluxConfig | None = None
    record: RecordConfig | None = None
    metrics: MetricsConfig | None = Field(default_factory=MetricsConfig)
    queue_size: int = Field(20000, ge=100, description="received messages waiting for the rule worker")
    batch_max: int = Field(500, ge=1, description="messages committed (and acknowledged) together")
    state_checkpoint: Duration = Field(15.0, description="how often window/last-seen state is saved; episode "
                                                        "changes are saved with their alerts at once")
    rules_poll: Duration = Field(1.0, description="how often the rule file is checked for changes")

    @model_validator(mode="after")
    def _grids(self) -> EdgeConfig:
        for g in self.grids:
            if not NAME.match(g):
                raise ValueError(f"grids: {g!r} must match [A-Za-z0-9_-]{{1,64}}")
        names = [s.name for s in self.feed_specs()]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"feeds: names {dup} are used twice (give each preset entry its own name:)")
        return self

    def feed_specs(self) -> list[FeedSpec]:
        """The feeds with presets expanded (names must be unique)."""
        out = [s for e in self.feeds for s in expand_entry(e.root, self.mqtt.topic_root)]
        return out

    def registry(self) -> dict[str, tuple[str, str, str | None]]:
        return {d.id: (d.grid, d.kind, d.gateway) for d in self.devices.known}

    def resolved(self, base: Path) -> EdgeConfig:
        """Relative paths made absolute against `base` (the config file's directory)."""
        def fix(p: Path) -> Path:
            return p if p.is_absolute() else (base / p).resolve()
        update: dict[str, object] = {"rules": fix(self.rules),
                                     "outbox": self.outbox.model_copy(update={"path": fix(self.outbox.path)})}
        if self.record is not None:
            update["record"] = self.record.model_copy(update={"path": fix(self.record.path)})
        if self.hub.ca_file is not None:
            update["hub"] = self.hub.model_copy(update={"ca_file": fix(self.hub.ca_file)})
        if self.mqtt.tls is not None:
            update["mqtt"] = self.mqtt.model_copy(update={"tls": self.mqtt.tls.resolved(fix)})
        return self.model_copy(update=update)


def load_edge_config(path: str | Path) -> EdgeConfig:
    cfg = load(EdgeConfig, path)
    return cfg.resolved(Path(path).resolve().parent)
