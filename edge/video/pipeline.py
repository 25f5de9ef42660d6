"""The video side of a worker round: scene models per camera before the rules, evidence as alerts fire.

`observe()` is what the agent, the backtest and the benchmark call for every event: a frame goes through
its camera's scene model (background, tamper measurements) before the rules; other events go straight to
the rules. An engine built with `Engine(..., evidence=video.evidence)` calls `evidence()` for every firing
alert it makes, with the evaluator of the rule that raised it: the alert gets a snapshot of the device's
newest frame with what that rule draws, so an alert fired by a hold time between frames uses the camera's
last frame.
"""

from __future__ import annotations

import logging

import cv2

from edge.message import Event
from edge.rules.base import Evaluator
from edge.rules.engine import Engine
from edge.video.evidence import snapshot
from edge.video.scene import Scenes
from gridwatch.core.alert import Alert, iso_ms
from gridwatch.core.kinds import VIDEO_KINDS

logger = logging.getLogger(__name__)
FRESH_S = 60.0
"""A frame older than this when the alert fires is not what the camera saw then: no snapshot."""


class Video:
    def __init__(self) -> None:
        # one worker thread evaluates frames; OpenCV's own thread pool would only contend for the same cores
        cv2.setNumThreads(1)
        self.scenes = Scenes()
        self.last: dict[str, Event] = {}

    def observe(self, engine: Engine, ev: Event) -> list[Alert]:
        if ev.kind in VIDEO_KINDS:
            self.prepare(ev)
        return engine.observe(ev)

    def prepare(self, ev: Event) -> None:
        if ev.kind == "camera":
            if ev.gray is not None:
                ev.scene = self.scenes.update(ev.device, ev.gray, ev.ts)
        if ev.jpeg is not None or ev.celsius is not None:  # a picture (a camera's alarm event is none)
            self.last[ev.device] = ev

    def evidence(self, evaluator: Evaluator, alert: Alert) -> None:
        """The engine's evidence hook: a snapshot for a video rule's firing alert."""
        if alert.kind not in VIDEO_KINDS or alert.evidence.snapshot_jpeg_b64 is not None:
            return
        frame = self.last.get(alert.device_id)
        if frame is None or alert.observed_at.timestamp() - frame.ts > FRESH_S:  # no picture, or an old one
            return
        try:
            overlay = evaluator.overlay(frame)
            if overlay is None:
                return
            polygons, boxes = overlay
            jpeg = snapshot(frame, polygons, boxes, f"{alert.rule_id} {alert.device_id} {iso_ms(alert.observed_at)}")
        except Exception:  # evidence is a courtesy: never lose the alert over it
            logger.exception("snapshot for %s failed", alert.rule_id)
            return
        if jpeg is not None:
            alert.evidence.snapshot_jpeg_b64 = jpeg
            alert.evidence.frame_ts = frame.ts
