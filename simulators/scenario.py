"""Scenario files (`simulators/scenarios/*.yaml`): devices per grid and a timeline of injected incidents,
each with the case it should produce. Loaded into typed models; errors name file, YAML path and reason."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gridwatch.core.config import Strict
from gridwatch.core.durations import Duration
from gridwatch.core.kinds import FeedKind
from gridwatch.core.names import NAME, Severity
from gridwatch.core.yamlconf import load
from simulators.devices import SENSOR_KINDS
from simulators.shapes import Shape


class Device(Strict):
    id: str = Field(pattern=NAME.pattern)
    grid: str = Field(pattern=NAME.pattern)
    kind: FeedKind = "sensor"
    model: str | None = Field(None, description=f"sensors: one of {sorted(SENSOR_KINDS)}")
    zones: list[str] = Field(default_factory=lambda: ["z1"], description="fences: zone names")
    gateway: Shape = Field("gridwatch", description="sensors: the gateway kind whose wire shape the readings "
                                                    "take (an edge feed preset of the same name maps them)")

    @model_validator(mode="after")
    def _model(self) -> Device:
        if self.kind == "sensor" and self.model not in SENSOR_KINDS:
            raise ValueError(f"a sensor needs model: one of {sorted(SENSOR_KINDS)}")
        return self


class Action(Strict):
    """What happens to the device during the incident (the keys that apply to its kind)."""

    level: float | None = Field(None, description="sensor: the metric holds about this value")
    rise_per_s: float | None = Field(None, description="sensor: the metric climbs this much per second")
    silent: bool = Field(False, description="any device: stops publishing")
    event: Literal["breach", "tamper", "fault"] | None = Field(None, description="fence: event published once")
    zone: str | None = None
    walk: list[tuple[float, float]] | None = Field(None, min_length=2, description="camera: a figure's path")
    speed: float = Field(0.3, gt=0, description="camera: walking speed, view widths per second")
    cover: bool = False
    blur: bool = False
    turn: bool = False
    light: float | None = Field(None, gt=0, description="camera: brightness gain (a distractor)")
    rain: float | None = Field(None, ge=0, le=0.2)
    hotspot: tuple[float, float] | None = Field(None, description="thermal: a spot at (x, y) that heats up")
    heat_rate: float = Field(8.0, gt=0, description="thermal: degrees per second the spot gains")
    peak_c: float = 200.0


class Expect(Strict):
    rule: str
    category: str
    severity: Severity
    grid: str | None = None  # default: the device's grid


class Incident(Strict):
    id: str = Field(pattern=NAME.pattern)
    at: Duration
    device: str
    for_: Duration | None = Field(None, alias="for", description="how long it lasts; default to the end")
    do: Action
    expect: Expect | None = Field(None, description="the case it must open; none = a distractor, no case")


class Scenario(Strict):
    name: str
    seed: int = 1
    duration: Duration = Field(gt=0)
    interval: Duration = Field(1.0, gt=0, description="sensor reading interval")
    fps: float = Field(2.0, gt=0, le=30, description="camera and thermal frames per second")
    devices: list[Device] = Field(min_length=1)
    incidents: list[Incident] = Field(default_factory=list)

    @model_validator(mode="after")
    def _refs(self) -> Scenario:
        kinds = {d.id: d.kind for d in self.devices}
        if len(kinds) != len(self.devices):
            raise ValueError("device ids must be unique")
        for inc in self.incidents:
            kind = kinds.get(inc.device)
            if kind is None:
                raise ValueError(f"incident {inc.id!r}: no device {inc.device!r}")
            a = inc.do
            wrong = [k for k, ok in (("level", kind == "sensor"), ("rise_per_s", kind == "sensor"),
                                     ("event", kind == "fence"), ("walk", kind == "camera"),
                                     ("hotspot", kind == "thermal")) if getattr(a, k) is not None and not ok]
            wrong += [k for k in ("cover", "blur", "turn") if getattr(a, k) and kind != "camera"]
            if wrong:
                raise ValueError(f"incident {inc.id!r}: {wrong} do not apply to a {kind}")
            if inc.at >= self.duration:
                raise ValueError(f"incident {inc.id!r} at {inc.at}s is after the end ({self.duration}s)")
        return self

    def device(self, device_id: str) -> Device:
        return next(d for d in self.devices if d.id == device_id)


def load_scenario(path: str | Path) -> Scenario:
    return load(Scenario, path)
