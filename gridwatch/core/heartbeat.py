"""What an edge agent and the hub say to each other about the fleet: the heartbeat, and the hash that names
a rule set's text (the hub stores it with each version, the agent reports the one it runs)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridwatch.core.names import NAME

__all__ = ["Heartbeat", "text_hash"]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Heartbeat(BaseModel):
    """What an agent tells the hub every `hub.heartbeat` seconds (and at once after applying a rule set)."""

    model_config = ConfigDict(extra="ignore")
    edge_id: str = Field(pattern=NAME.pattern)
    version: str = Field("", max_length=32, description="the agent's software version")
    grids: list[Annotated[str, Field(pattern=NAME.pattern)]] = Field(default_factory=list, max_length=10_000)
    rule_version: int | None = Field(None, ge=0, le=2**31 - 1,
                                     description="the hub rule version it runs; null: its own file")
    rule_hash: str = Field("", max_length=64)
    broker: Literal["up", "down"] = "up"
    outbox_depth: int = Field(0, ge=0, le=2**31 - 1)
    oldest_unsent: datetime | None = Field(None, description="the oldest alert not yet taken by the hub")
    dropped_frames: int = Field(0, ge=0, le=2**62)
    devices: int = Field(0, ge=0, le=2**31 - 1, description="devices it keeps state for")
    started_at: datetime | None = None
    problem: str = Field("", max_length=8000, description="why it refused the last rule set or device list")
