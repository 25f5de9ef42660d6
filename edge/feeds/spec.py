"""The `feeds:` section of `configs/edge.yaml`: how a gateway's topics and payloads become readings.

A feed names a topic filter with captures (`zigbee2mqtt/{device}`, `site/{grid}/+/{device}/data`), the
feed kind, where grid, device and time come from, and which payload paths become which metrics. A value
source is written as a string: `{name}` is a topic capture, `$...` a JSON path (python-jsonpath),
`@registry` the device list's grid for the device, anything else a fixed value. Presets
(`edge.feeds.presets`) expand into ready-made feeds; `format: gridwatch` is the native contract.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, RootModel, field_validator, model_validator

from edge.feeds.paths import Path
from gridwatch.core.config import Strict, TimeZone

CAPTURE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
REGISTRY = "@registry"
KEY = "@key"  # in `each_device` feeds: the key the records sit under

TsFormat = Literal["auto", "rfc3339", "epoch_s", "epoch_ms", "epoch_us", "receive", "compact"]
"""`compact` is `20151212T121212Z` (Huawei IoTDA); `auto` takes RFC 3339 strings and epoch numbers
(s, ms or µs told apart by magnitude)."""

FENCE_EVENTS = ("breach", "tamper", "restore", "fault")


def yaml_words(v: Any) -> Any:
    """Word-map keys as written: YAML 1.1 reads unquoted `ON`, `off`, `yes`, `true` as booleans, so a
    boolean key stands for all of its words."""
    if not isinstance(v, dict):
        return v
    out: dict[Any, Any] = {}
    for k, x in v.items():
        if isinstance(k, bool):
            for word in (("true", "on", "yes") if k else ("false", "off", "no")):
                out.setdefault(word, x)
        else:
            out[str(k) if isinstance(k, int | float) else k] = x
    return out


T = TypeVar("T")
Words = Annotated[dict[str, T], BeforeValidator(yaml_words)]
"""A word map; unquoted YAML booleans as keys stand for their words."""


def _compiles(text: str) -> str:
    Path(text)  # raises ValueError naming the path and the parser's reason
    return text


JsonPath = Annotated[str, AfterValidator(_compiles)]
"""A JSON path (python-jsonpath), checked when the config is read."""


def source_kind(text: str) -> str:
    if CAPTURE.fullmatch(text):
        return "capture"
    if text.startswith("$") or text.startswith("{{"):
        return "path"
    if text in (REGISTRY, KEY):
        return text[1:]
    return "fixed"


def check_source(text: str, what: str) -> str:
    if source_kind(text) == "path":
        Path(text)
    return text


class TsSpec(Strict):
    path: JsonPath | None = Field(None, description="JSON path of the stamp; several matches: the latest")
    format: TsFormat = "auto"
    tz: TimeZone | None = Field(None, description="IANA zone for stamps without an offset (Tasmota's Time)")
    required: bool = Field(True, description="false: a message without the stamp counts from its receive time")


class MetricSpec(Strict):
    path: JsonPath
    map: Words[float] = Field(default_factory=dict, description="words to numbers (ON: 1, OFF: 0)")
    numeric_strings: bool | None = Field(None, description="accept \"23.5\"; default: the feed's setting")
    scale: float = 1.0
    optional: bool = Field(False, description="absent: no reading of this metric, not an error")


class CollectSpec(Strict):
    """Every numeric field under `path` becomes a metric of the same name (nested objects joined by `_`)."""

    path: JsonPath = "$"
    member: str | None = Field(None, description="take this key of each field's object (OneNET's `value`)")
    skip: list[str] = Field(default_factory=list, description="field names that are not metrics")
    prefix: str = ""


class EventSpec(Strict):
    """Fence feeds: the payload word that names what happened."""

    path: JsonPath
    map: Words[Literal["breach", "tamper", "restore", "fault", "ignore"]] = Field(default_factory=dict)
    zone: str | None = Field(None, description="JSON path or capture of the zone")


class StateSpec(Strict):
    """Status feeds: where the online / offline word is and what the gateway calls it."""

    path: str = Field("$.state", description="ignored for a plain-text payload (the text is the state)")
    map: Words[Literal["online", "offline", "ignore"]] = Field(default_factory=dict)
    value: Literal["online", "offline"] | None = Field(None, description="the topic itself says it "
                                                                        "(ThingsBoard's connect / disconnect)")


def default_states() -> dict[str, str]:
    return {"online": "online", "offline": "offline", "true": "online", "false": "offline",
            "connected": "online", "disconnected": "offline", "1": "online", "0": "offline"}


class FeedSpec(Strict):
    """One feed after its preset (if any) is expanded."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    topic: str = Field(min_length=1, description="MQTT filter with {captures}; + and # allowed")
    format: Literal["json", "auto", "gridwatch", "sparkplug-b"] = Field(
        "json", description="auto: a payload that is not JSON is taken as a plain text value")
    role: Literal["data", "status"] = "data"
    kind: Literal["sensor", "fence"] = "sensor"
    grid: str | None = Field(None, description="fixed, {capture}, $.path or @registry")
    device: str | None = Field(None, description="fixed, {capture}, $.path or @key; default {device}")
    gateway: str | None = Field(None, description="which gateway the feed's devices sit behind (default: the "
                                                  "feed's group); a status feed with scope gateway names it")
    scope: Literal["device", "gateway"] = Field("device", description="status feeds: one device or all "
                                                                      "devices behind the gateway")
    ts: TsSpec = Field(default_factory=TsSpec)
    metrics: dict[str, MetricSpec] = Field(default_factory=dict)
    collect: CollectSpec | None = None
    event: EventSpec | None = None
    state: StateSpec = Field(default_factory=StateSpec)
    each_device: JsonPath | None = Field(None, description="path of an object keyed by device name (ThingsBoard)")
    records: JsonPath | None = Field(None, description="path of a list of records, each read like a message")
    numeric_strings: bool = False
    values: Words[float] = Field(default_factory=dict, description="words to numbers for every metric")
    ignore: list[str] = Field(default_factory=list, description="topic filters of this feed's tree that carry "
                                                                "no readings (not counted as unmapped)")
    group: str = Field("", description="the preset instance the feed came from")

    @field_validator("metrics", mode="before")
    @classmethod
    def _short_metrics(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ({"path": x} if isinstance(x, str) else x) for k, x in v.items()}
        return v

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, v: dict[str, MetricSpec]) -> dict[str, MetricSpec]:
        for k in v:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", k):
                raise ValueError(f"metric name {k!r} must match [A-Za-z_][A-Za-z0-9_]*")
        return v

    @field_validator("ts", mode="before")
    @classmethod
    def _short_ts(cls, v: Any) -> Any:
        if isinstance(v, str):
            return {"format": v} if v in ("receive", "auto") else {"path": v}
        return v

    @field_validator("collect", mode="before")
    @classmethod
    def _short_collect(cls, v: Any) -> Any:
        return {"path": v} if isinstance(v, str) else v

    @field_validator("grid", "device", "gateway")
    @classmethod
    def _sources(cls, v: str | None) -> str | None:
        return None if v is None else check_source(v, "source")

    @model_validator(mode="after")
    def _coherent(self) -> FeedSpec:
        captures = set(CAPTURE.findall(self.topic))
        if self.format == "sparkplug-b":
            captures |= {"group", "node", "device"}
        for what in ("grid", "device", "gateway"):
            src = getattr(self, what)
            if src is not None and source_kind(src) == "capture" and CAPTURE.fullmatch(src).group(1) not in captures:  # type: ignore[union-attr]
                raise ValueError(f"{what}: {src!r} is not a capture of topic {self.topic!r} "
                                 f"(captures: {sorted(captures) or 'none'})")
        for part in self.topic.split("/"):
            if part != "#" and part != "+" and ("#" in part or "+" in part):
                raise ValueError(f"topic {self.topic!r}: + and # must stand alone between slashes")
            if CAPTURE.search(part) and not CAPTURE.fullmatch(part):
                raise ValueError(f"topic {self.topic!r}: a capture must be a whole level, not {part!r}")
        if self.format in ("gridwatch", "sparkplug-b"):
            return self
        if self.grid is None and "grid" not in captures:
            raise ValueError("grid is required: a fixed grid id, a {capture}, a $.path or @registry")
        if self.device is None and "device" not in captures and self.each_device is None \
                and not (self.role == "status" and self.scope == "gateway"):
            raise ValueError(f"device is required: topic {self.topic!r} has no {{device}} capture")
        if self.role == "data":
            if self.kind == "fence" and self.event is None:
                raise ValueError("a fence feed needs `event: {path, map}`")
            if self.kind == "sensor" and not self.metrics and self.collect is None:
                raise ValueError("a sensor feed needs `metrics` (name: path) or `collect` (all numeric fields)")
        return self


def expand_entry(item: dict[str, Any], root: str) -> list[FeedSpec]:
    """One `feeds:` entry (a preset with its keys, or a plain feed) as validated feeds."""
    from pydantic import ValidationError

    from edge.feeds.presets import expand
    from gridwatch.core.yamlconf import path_text

    out = []
    for raw in expand(item, root):
        try:
            out.append(FeedSpec.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = path_text(tuple(first["loc"]))
            msg = first["msg"].removeprefix("Value error, ")
            where = "" if where == "(top)" else f"{where}: "
            raise ValueError(f"feed {raw.get('name', '?')}: {where}{msg}") from None
    return out


class FeedEntry(RootModel[dict[str, Any]]):
    """A `feeds:` entry as written; checked by expanding it."""

    @model_validator(mode="after")
    def _expands(self) -> FeedEntry:
        expand_entry(self.root, "gw")
        return self
