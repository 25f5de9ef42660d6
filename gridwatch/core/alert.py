"""The alert: what an edge agent's rule raises and the hub turns into a case (DESIGN §5).

One typed model from the rule engine to the hub's route: the engine builds `Alert` objects, the outbox
stores their JSON, the forwarder posts them as an `AlertBatch`, and `POST /api/v1/alerts` declares
`AlertBatch` as its body, so OpenAPI documents the schema and a malformed alert gets a 422 naming the
field. The hub answers one `AlertResult` per alert.

Stamps are aware UTC datetimes at millisecond precision, written `2026-11-22T10:00:00.120Z`; a stamp
without an offset is taken as UTC. Unknown extra fields are kept (an older hub stores what a newer edge
adds).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

from gridwatch.core.kinds import FeedKind
from gridwatch.core.names import Severity
from gridwatch.core.warning import WarningLevel

AlertState = Literal["firing", "warning", "resolved"]
"""`firing` once, then any `warning` changes of its level (early-warning rules), then `resolved`."""
MAX_BATCH: Final = 5000


def utc_ms(dt: datetime) -> datetime:
    """Aware UTC, truncated to the millisecond (what the wire carries)."""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def iso_ms(dt: datetime) -> str:
    if dt.tzinfo is not UTC:  # validated stamps are UTC already
        dt = utc_ms(dt)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_epoch(ts: float) -> datetime:
    return utc_ms(datetime.fromtimestamp(ts, UTC))


Stamp = Annotated[datetime, AfterValidator(utc_ms), PlainSerializer(iso_ms, return_type=str, when_used="json")]


class Evidence(BaseModel):
    """What the edge saw: a JPEG snapshot for video alerts (the hub stores it and keeps its number)."""

    model_config = ConfigDict(extra="allow")
    snapshot_jpeg_b64: str | None = Field(None, description="annotated JPEG of the triggering frame, base64")
    frame_ts: float | None = Field(None, description="device time of the frame, epoch seconds")
    stored: int | str | None = Field(
        None, description="set by the hub: the evidence number it stored, or why it did not")


class Place(BaseModel):
    """Where a device is: WGS-84 coordinates and words a person can go to (address, landmark)."""

    model_config = ConfigDict(extra="forbid")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    address: str = Field("", max_length=500, description="address or landmark")
    name: str = Field("", max_length=200, description="the device's display name")


class Alert(BaseModel):
    """One episode change of one rule on one device: `firing` once, later `resolved` with the same id. A rule
    with warning levels (预警 蓝/黄/橙/红) sends each change of level in between as state `warning`, numbered by
    `warning_seq` within the episode, so a climb blue → orange → red is one alert and one case."""

    model_config = ConfigDict(extra="allow")
    alert_id: str = Field(min_length=1, max_length=64, description="hash(rule, device, zone, episode start)")
    state: AlertState
    rule_id: str = Field(min_length=1, max_length=64)
    rule_hash: str = Field("", max_length=64, description="hash of the rule version that raised it")
    edge_id: str = Field("", max_length=128)
    device_id: str = Field(min_length=1, max_length=64)
    grid_id: str = Field(min_length=1, max_length=64)
    kind: FeedKind | None = Field(None, description="the feed kind of the device")
    category: str = Field(min_length=1, max_length=64)
    severity: Severity
    started_at: Stamp | None = Field(None, description="episode start, device time")
    observed_at: Stamp = Field(description="device time of this state change")
    value: float | None = None
    message: str = Field("", max_length=4000)
    labels: dict[str, str] = Field(default_factory=dict)
    evidence: Evidence = Field(default_factory=Evidence)
    place: Place | None = Field(None, description="the device's place, from the registry the agent holds")
    warning: WarningLevel | None = Field(None, description="预警 level (blue, yellow, orange, red) of an "
                                                           "early-warning rule at this change")
    warning_seq: int = Field(0, ge=0, le=100_000, description="the nth change of level in this episode (state "
                                                               "`warning`; 0 otherwise)")

    @property
    def key(self) -> tuple[str, str]:
        """Idempotency key: the hub takes each (alert_id, state) once; each change of level once too."""
        return (self.alert_id, f"warning:{self.warning_seq}" if self.state == "warning" else self.state)


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def nul_field(alert: Alert) -> str | None:
    """The first field holding a NUL character (PostgreSQL cannot store one in text or JSON), or None."""
    for name, value in alert.model_dump(mode="json").items():
        if _holds_nul(value):
            return name
    return None


class AlertBatch(BaseModel):
    """The body of `POST /api/v1/alerts`."""

    alerts: list[Alert] = Field(max_length=MAX_BATCH)


AlertStatus = Literal["created", "merged", "updated", "duplicate", "held", "rejected"]
TAKEN: Final[frozenset[str]] = frozenset({"created", "merged", "updated", "duplicate", "held"})


class AlertResult(BaseModel):
    """What the hub did with one alert: opened a case, merged into one, updated one (a resolve), had it
    already (duplicate), held it in a maintenance window (no case until the window ends), or rejected it
    for good (`error` says why)."""

    alert_id: str | None
    state: str | None
    status: AlertStatus
    case_id: str | None = None
    error: str | None = None


class AlertResults(BaseModel):
    results: list[AlertResult]
