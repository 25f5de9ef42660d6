"""`configs/cameras.yaml` as typed models: the broker, the metrics port and the cameras.

Relative file paths in `url` are resolved against the directory of the file itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge.config import HubConfig, MqttConfig
from edge.frames.stream import KeyframeMode
from gridwatch.core.config import Strict
from gridwatch.core.durations import Duration
from gridwatch.core.mqttlink import secret
from gridwatch.core.names import NAME
from gridwatch.core.yamlconf import load

AlarmKind = Literal["isapi", "dahua", "onvif"]


class AlarmSource(Strict):
    """Where the camera (or its NVR) pushes its own alarms."""

    kind: AlarmKind
    url: str = Field(description="base URL of the device, e.g. http://192.168.1.64 (the path is the vendor's)")
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the password")
    password: str | None = Field(None, description="demo only; prefer password_env")
    channel: int | None = Field(None, ge=0, description="an NVR's channel of this camera; none = every channel")
    events: list[str] = Field(default_factory=list, description="vendor event codes to forward; empty = all known")

    def secret(self) -> str | None:
        return secret(self.password_env, self.password)


class Ptz(Strict):
    """视频复核: the camera's ONVIF device service, where it turns to a preset (PTZ service `GotoPreset`) and gives
    a snapshot (media service `GetSnapshotUri`, fetched with HTTP digest)."""

    url: str = Field(description="base URL of the device, e.g. http://192.168.1.64")
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the password")
    password: str | None = Field(None, description="demo only; prefer password_env")
    profile: str | None = Field(None, description="media profile token (default: the device's first profile)")

    def secret(self) -> str | None:
        return secret(self.password_env, self.password)


class Camera(Strict):
    id: str = Field(pattern=NAME.pattern)
    grid: str = Field(pattern=NAME.pattern)
    url: str | None = Field(None, description="rtsp://, rtsps://, http(s):// (MJPEG) or a file path")
    sample_every: Duration = Field(1.0, gt=0, le=3600, description="one published frame per this long")
    keyframes: KeyframeMode = Field("auto", description="decode only keyframes when they come often enough")
    width: int = Field(640, ge=64, le=3840, description="published frames are scaled to this width (never up)")
    jpeg_quality: int = Field(80, ge=10, le=100)
    offline_after: Duration = Field(10.0, gt=0, description="no frame for this long publishes `offline`")
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    realtime: bool | None = Field(None, description="pace a file at its frame rate (default: files yes, live no)")
    loop: bool = Field(False, description="a file starts again at its end (playback)")
    alarms: list[AlarmSource] = Field(default_factory=list)
    ptz: Ptz | None = Field(None, description="视频复核: turn it to a sensor's preset and take its picture (ONVIF)")


class Backoff(Strict):
    min: Duration = Field(1.0, gt=0)
    max: Duration = Field(30.0, gt=0)


class CameraGatewayConfig(Strict):
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    client_id: str = Field("gridwatch-camera-gateway", pattern=NAME.pattern)
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Prometheus metrics; none = off")
    open_timeout: Duration = Field(10.0, gt=0, description="give up opening or reading a stream after this long")
    reconnect: Backoff = Field(default_factory=Backoff)
    cameras: list[Camera] = Field(min_length=1)
    hub: HubConfig | None = Field(None, description="视频复核: read the looks the hub asks of these cameras and send "
                                  "their pictures (a key with the operator role for their grids)")
    alarm_evidence: bool = Field(True, description="with `hub:`, a streamed camera's alarm adds to its case the frame "
                                 "at the alarm (报警抓拍) and an MP4 of its frames around it (报警录像)")
    clip_before: Duration = Field(10.0, ge=0, le=120, description="seconds of frames kept before an alarm")
    clip_after: Duration = Field(5.0, ge=0, le=120, description="seconds of frames taken after an alarm")
    look_poll: Duration = Field(2.0, gt=0, le=3600, description="seconds between readings of the hub's looks")
    look_settle: Duration = Field(3.0, ge=0, le=60, description="seconds a camera is given to reach a preset before "
                                  "its picture is taken")

    @model_validator(mode="after")
    def _unique(self) -> CameraGatewayConfig:
        seen: set[str] = set()
        for c in self.cameras:
            if c.id in seen:
                raise ValueError(f"camera {c.id!r} is listed twice")
            seen.add(c.id)
            if c.url is None and not c.alarms and c.ptz is None:
                raise ValueError(f"camera {c.id!r} has no stream url, alarms or ptz")
        return self


def load_camera_config(path: str | Path) -> CameraGatewayConfig:
    cfg = load(CameraGatewayConfig, path)
    base = Path(path).resolve().parent
    cams = []
    for c in cfg.cameras:
        if c.url and "://" not in c.url and not Path(c.url).is_absolute():
            c = c.model_copy(update={"url": str(base / c.url)})
        cams.append(c)
    return cfg.model_copy(update={"cameras": cams})
