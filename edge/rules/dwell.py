"""`dwell` (loitering): someone or something that came into a zone moving stays in it for `for`, moving
about or standing still.

The camera's presence model (edge/video/scene.py, `SceneState.presence`) keeps what came in moving and is still
there, also once it stands still and the motion background has learned it away. Here each present region in
the zone (at least `min_area` of the zone) is followed from one presence update to the next: a region that
overlaps, grown by `reach`, a region seen before inherits its start time, so one person's stay is timed
from when they came in; a stream of passers-by, each in the zone for a moment, is not a stay. A region may
vanish for up to `gap` (a person hidden a moment, a presence update that missed them) without losing its
time. Fires when a stay reaches `for` (value: the longest stay in seconds), resolves `clear_after` after
the zone is empty.
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

KEYS = ("dwell",)


class DwellSpec(Strict):
    zone: zones.Polygon | None = Field(None, description="polygon in normalised [0,1] coordinates; none = whole view")
    ignore: list[zones.Polygon] = Field(default_factory=list, description="masks where presence never counts")
    for_: Duration = Field(60.0, alias="for", gt=0, description="how long a stay in the zone lasts before firing")
    min_area: float = Field(0.02, gt=0.0, le=1.0, description="fraction of the zone a present region must cover")
    gap: Duration = Field(3.0, ge=0, description="a region may vanish this long and keep its stay")
    reach: float = Field(0.05, ge=0, le=0.5, description="how far (view widths) a region may move between "
                                                         "presence updates and still be the same stay")
    clear_after: Duration = Field(10.0, gt=0, description="resolve after the zone has been empty this long")


class Config(WhenBase):
    dwell: DwellSpec


Box = list[float]  # x, y, w, h (normalised), since, last seen


class Evaluator(ClearsWhenQuiet):
    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        self.cfg = cfg.dwell
        self.clear_after = self.cfg.clear_after
        self._zones: dict[tuple[int, ...], tuple[Any, int]] = {}

    def accepts(self, ev: Event) -> bool:
        return ev.kind == "camera" and ev.scene is not None

    def _zone(self, shape: tuple[int, ...]) -> tuple[Any, int]:
        zone = self._zones.get(shape)
        if zone is None:
            zm = zones.mask(self.cfg.zone, self.cfg.ignore, shape)
            zone = self._zones[shape] = (zm, cv2.countNonZero(zm))
        return zone

    def regions(self, ev: Event) -> list[tuple[float, float, float, float]]:
        """Present regions in the zone big enough to count, as normalised boxes."""
        scene = ev.scene
        assert scene is not None
        present = scene.presence()
        zm, area = self._zone(present.shape)
        if not area:
            return []
        inside = cv2.bitwise_and(present, zm)
        if cv2.countNonZero(inside) < self.cfg.min_area * area:
            return []
        h, w = inside.shape
        n, _, stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=8)
        return [(x / w, y / h, bw / w, bh / h) for x, y, bw, bh, px in stats[1:n].tolist()
                if px >= self.cfg.min_area * area]

    def observe(self, st: State, ev: Event) -> Verdict | None:
        ts = ev.ts
        found = self.regions(ev)
        before: list[Box] = [b for b in st.get("stays", []) if ts - b[5] <= self.cfg.gap]
        r = self.cfg.reach
        stays: list[Box] = []
        for x, y, w, h in found:
            since = min((b[4] for b in before
                         if x - r < b[0] + b[2] and b[0] - r < x + w and y - r < b[1] + b[3] and b[1] - r < y + h),
                        default=ts)
            stays.append([round(x, 4), round(y, 4), round(w, 4), round(h, 4), since, ts])
        kept = [b for b in before if not any(s[4] == b[4] for s in stays)]  # vanished a moment: still held
        st["stays"] = stays + kept
        if not st["stays"]:
            st.pop("stays")
        if not found:
            return None
        since = min(s[4] for s in stays)
        if ts - since >= self.cfg.for_:
            st["hit"] = ts
            return Verdict(True, ts, round(ts - since, 1), start=since)
        return None

    def overlay(self, ev: Event) -> Overlay:
        """The zone (then ignore masks) and the present regions in it."""
        return [self.cfg.zone, *self.cfg.ignore], self.regions(ev)
