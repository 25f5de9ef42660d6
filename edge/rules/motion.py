"""`motion_in_zone`: something moving inside a polygon of a camera's view for a few consecutive frames.

The camera's scene model (edge/video/scene.py) gives the motion mask; a global change of light gives none, so
lights, clouds and IR switches are not intrusions. Resolved after `clear_after` without motion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cv2
from pydantic import Field

from edge.message import Event
from edge.rules import zones
from edge.rules.base import ClearsWhenQuiet, Overlay, State, Strict, Verdict, WhenBase
from gridwatch.core.durations import Duration

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec

KEYS = ("motion_in_zone",)


class MotionSpec(Strict):
    zone: zones.Polygon | None = Field(None, description="polygon in normalised [0,1] coordinates; none = whole view")
    ignore: list[zones.Polygon] = Field(default_factory=list, description="masks where motion never counts")
    min_area: float = Field(0.02, gt=0.0, le=1.0, description="fraction of the zone that must move")
    min_frames: int = Field(3, ge=1, le=1000, description="consecutive frames with motion before it counts")
    clear_after: Duration = Field(10.0, gt=0, description="resolve after this long without motion")


class Config(WhenBase):
    motion_in_zone: MotionSpec


class Evaluator(ClearsWhenQuiet):
    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        self.cfg = cfg.motion_in_zone
        self.clear_after = self.cfg.clear_after
        self._zones: dict[tuple[int, ...], tuple[Any, int]] = {}  # frame shape -> (zone mask, its area)

    def accepts(self, ev: Event) -> bool:
        return ev.kind == "camera" and ev.scene is not None

    def zone_mask(self, shape: tuple[int, ...]) -> Any:
        return zones.mask(self.cfg.zone, self.cfg.ignore, shape)

    def observe(self, st: State, ev: Event) -> Verdict | None:
        scene = ev.scene
        assert scene is not None
        if scene.relit:
            return None
        shape = scene.mask.shape
        zone = self._zones.get(shape)
        if zone is None:
            zm = self.zone_mask(shape)
            zone = self._zones[shape] = (zm, cv2.countNonZero(zm))
        zm, area = zone
        if not area or scene.moved < self.cfg.min_area * area:  # too little moves in the whole view
            frac = 0.0
        else:
            frac = cv2.countNonZero(cv2.bitwise_and(scene.mask, zm)) / area
        if frac >= self.cfg.min_area:
            n = st.get("n", 0) + 1
            st["n"] = n
            if n == 1:
                st["first"] = ev.ts
            if n >= self.cfg.min_frames:
                st["hit"] = ev.ts
                return Verdict(True, ev.ts, round(frac, 4), start=st.get("first"))
            return None
        st["n"] = 0
        if "hit" in st and ev.ts - st["hit"] >= self.cfg.clear_after:
            del st["hit"]
            return Verdict(False, ev.ts)
        return None

    def overlay(self, ev: Event) -> Overlay:
        """Polygons to draw (zone, then ignore masks) and the moving regions inside the zone (x, y, w, h)."""
        scene = ev.scene
        assert scene is not None
        moving = cv2.bitwise_and(scene.mask, self.zone_mask(scene.mask.shape))
        return [self.cfg.zone, *self.cfg.ignore], zones.regions(moving)

