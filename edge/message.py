"""What the rest of the edge sees of MQTT: a received message and a normalised observation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gridwatch.core.kinds import EventKind

if TYPE_CHECKING:
    import numpy as np

    from edge.video.scene import SceneState


@dataclass(slots=True)
class Message:
    """One raw message as received (or replayed from a capture)."""

    topic: str
    payload: bytes
    received_at: float  # epoch seconds, receive clock
    properties: dict[str, str] = field(default_factory=dict)  # MQTT v5 user properties
    ack: Callable[[], object] | None = None  # acknowledges the message to the broker (QoS 1)


@dataclass(slots=True)
class Event:
    """A decoded, validated observation from one device."""

    kind: EventKind
    grid: str
    device: str
    ts: float  # device time, epoch seconds
    received_at: float
    seq: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    zone: str | None = None
    event: str | None = None  # fence: breach | tamper | restore | fault; status: online | offline
    clock_ahead: float = 0.0  # seconds the device's stamp was ahead when it was replaced by the receive time
    device_kind: str | None = None  # status: the kind of the device the status is about
    jpeg: bytes | None = None  # camera: the frame as received
    gray: np.ndarray | None = None  # camera: decoded, reduced grayscale (uint8)
    scene: SceneState | None = None  # camera: what the camera's scene model made of the frame
    celsius: np.ndarray | None = None  # thermal: temperatures (float32)
    gateway: str | None = None  # status: the device is marked by its gateway's availability, not its own
    watched_by: str | None = None  # status: who keeps watch over the device's liveness natively (issue 41)
    members: tuple[str, ...] | None = None  # status of a gateway: the devices behind it
