"""Scenario files (`simulators/scenarios/*.yaml`): devices per grid and a timeline of injected incidents,
each with the case it should produce. Loaded into typed models; errors name file, YAML path and reason."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gridwatch.core.config import Strict
from gridwatch.core.durations import Duration
from gridwatch.core.kinds import FeedKind
from gridwatch.core.names import NAME, Severity
from gridwatch.core.yamlconf import load
from simulators.devices import SENSOR_KINDS, SensorModel, rounded
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
    noise: float | None = Field(None, gt=0, description="sensor: extra noise, this standard deviation in the "
                                                        "metric's unit (a failing sensor, a storm)")
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
    rules: str = Field("configs/demo/rules.yaml", description="the rule file (from the project's root) the "
                                                              "expectations are written for")
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
                                     ("noise", kind == "sensor"),
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


def sensor_value(model: SensorModel, incidents: list[Incident], t: float, clock: float) -> float:
    """A sensor's reading at scenario time `t` (`clock`: epoch seconds, for the daily cycle): its baseline (noise,
    drift, daily cycle), then what its active incidents do: hold a level (a step), rise, add noise."""
    v = model.value(t, clock)
    for inc in incidents:
        if inc.do.level is not None:
            v = inc.do.level + model.rng.gauss(0.0, model.noise)
        if inc.do.rise_per_s is not None:
            v += inc.do.rise_per_s * (t - inc.at)
        if inc.do.noise is not None:
            v += model.rng.gauss(0.0, inc.do.noise)
    return v


def active(sc: Scenario, device: str, t: float) -> list[Incident]:
    """The incidents of `device` under way at scenario time `t`."""
    return [i for i in sc.incidents if i.device == device and i.at <= t and (i.for_ is None or t < i.at + i.for_)]


def sensor_series(sc: Scenario, device: str, clock0: float) -> list[tuple[float, dict[str, float]]]:
    """Every reading `device` publishes when the scenario is played from epoch `clock0`, computed without
    playing it (the same models and seeds as the player): (epoch seconds, metrics)."""
    index = next(i for i, d in enumerate(sc.devices) if d.id == device)
    dev = sc.devices[index]
    model = SensorModel(dev.model or "gas", sc.seed + index)
    out: list[tuple[float, dict[str, float]]] = []
    t = 0.0
    while t < sc.duration:
        incidents = active(sc, device, t)
        if not any(i.do.silent for i in incidents):
            v = sensor_value(model, incidents, t, clock0 + t)
            out.append((clock0 + t, {model.metric: rounded(model.metric, v)}))
        t += sc.interval
    return out


def capture(sc: Scenario, clock0: float, root: str = "gw") -> list[dict[str, str]]:
    """The scenario's sensor readings as capture records (the JSONL `record:` writes and `rules backtest`
    reads), in time order, each in its device's gateway shape: days of readings without playing them."""
    from simulators.shapes import reading

    rows: list[tuple[float, str, dict[str, str]]] = []
    for dev in sc.devices:
        if dev.kind != "sensor":
            continue
        for seq, (ts, metrics) in enumerate(sensor_series(sc, dev.id, clock0)):
            topic, payload, _ = reading(dev.gateway, root, dev.grid, dev.id, metrics, round(ts * 1000), seq)
            body = ({"payload_b64": base64.b64encode(payload).decode()} if dev.gateway == "sparkplug-b"
                    else {"payload": payload.decode()})
            stamp = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            rows.append((ts, dev.id, {"received_at": stamp, "topic": topic, **body}))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in rows]
