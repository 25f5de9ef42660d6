"""What the rest of the edge sees of MQTT: a received message and a normalised observation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Message:
    """One raw message as received (or replayed from a capture)."""

    topic: str
    payload: bytes
    received_at: float  # epoch seconds, receive clock
    properties: dict[str, str] = field(default_factory=dict)  # MQTT v5 user properties
    ack: Callable[[], None] | None = None  # acknowledges the message to the broker (QoS 1)


@dataclass(slots=True)
class Event:
    """A decoded, validated observation from one device."""

    kind: str  # sensor | fence | status | camera | thermal
    grid: str
    device: str
    ts: float  # device time, epoch seconds
    received_at: float
    seq: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    zone: str | None = None
    event: str | None = None  # fence: breach | tamper | restore | fault; status: online | offline
    extra: dict[str, Any] = field(default_factory=dict)
