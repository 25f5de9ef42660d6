"""`event`: a fence event (breach, tamper, fault) or a camera's own alarm (motion, line_crossing,
intrusion…, from the camera gateway) in a zone; resolved by `restore` (a fence's restore, the end of a
camera alarm) or by quiet time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from edge.message import Event
from edge.rules.base import ClearsWhenQuiet, Overlay, State, Verdict, WhenBase
from gridwatch.core.durations import Duration

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

KEYS = ("event",)
EventName = Literal["breach", "tamper", "fault",  # fences
                    "motion", "line_crossing", "intrusion", "region_entrance", "region_exiting", "loitering",
                    "video_loss", "defocus", "scene_change"]  # cameras (gridwatch.core.kinds.CAMERA_EVENTS)
EVENT_KINDS = ("fence", "camera")


class Config(WhenBase):
    event: list[EventName] = Field(description="event names that raise the alert")
    zones: list[str] = Field(default_factory=list, description="zones this rule watches; empty = all")
    clear_after: Duration = Field(300.0, gt=0, description="resolve after this long without a new event")

    @field_validator("event", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Evaluator(ClearsWhenQuiet):
    fixed_sub = False  # one episode per zone

    def overlay(self, ev: Event) -> Overlay | None:
        """A camera's own alarm (RTSP/ONVIF, ISAPI, Dahua, issue 41): the camera's newest frame as it was, the
        camera having judged it (nothing of ours to draw); a fence has no picture."""
        return ([], []) if ev.kind == "camera" else None

    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        self.cfg = cfg
        self.clear_after = cfg.clear_after

    def accepts(self, ev: Event) -> bool:
        return (ev.kind in EVENT_KINDS and ev.event is not None
                and (not self.cfg.zones or ev.zone in self.cfg.zones))

    def sub(self, ev: Event) -> str:
        return ev.zone or ""

    def observe(self, st: State, ev: Event) -> Verdict | None:
        if ev.event in self.cfg.event:
            st["hit"] = ev.ts
            return Verdict(True, ev.ts)
        if ev.event == "restore" and "hit" in st:
            del st["hit"]
            return Verdict(False, ev.ts)
        return None
