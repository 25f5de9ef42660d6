"""The video side of a worker round: scene models per camera before the rules, evidence after them.

`observe()` is what the agent, the backtest and the benchmark call for every event: a frame goes through
its camera's scene model (background, tamper measurements) before the rules, and every `firing` alert it
raises gets a snapshot; other events go straight to the rules. `tick()` does the same for timers: an alert
fired by a hold time ending between frames uses the camera's last frame.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2

from edge.evidence import snapshot
from edge.message import Event
from edge.rules.engine import Engine
from edge.rules.ruleset import RuleSet
from edge.scene import Scenes

logger = logging.getLogger(__name__)
VIDEO_KINDS = ("camera", "thermal")


class Video:
    def __init__(self) -> None:
        # one worker thread evaluates frames; OpenCV's own thread pool would only contend for the same cores
        cv2.setNumThreads(1)
        self.scenes = Scenes()
        self.last: dict[str, Event] = {}

    def observe(self, engine: Engine, ev: Event) -> list[dict[str, Any]]:
        if ev.kind not in VIDEO_KINDS:
            return engine.observe(ev)
        self.prepare(ev)
        raised = engine.observe(ev)
        self.evidence(raised, engine.rules, ev)
        return raised

    def tick(self, engine: Engine, now: float) -> list[dict[str, Any]]:
        timed = engine.tick(now)
        self.evidence(timed, engine.rules)
        return timed

    def prepare(self, ev: Event) -> None:
        if ev.kind == "camera":
            ev.extra["scene"] = self.scenes.update(ev.device, ev.extra["gray"])
        self.last[ev.device] = ev

    def evidence(self, alerts: list[dict[str, Any]], rules: RuleSet, ev: Event | None = None) -> None:
        for a in alerts:
            if a["state"] != "firing" or a["kind"] not in VIDEO_KINDS or "snapshot_jpeg_b64" in a["evidence"]:
                continue
            frame = ev if ev is not None and ev.device == a["device_id"] else self.last.get(a["device_id"])
            cr = rules.rules.get(a["rule_id"])
            overlay = getattr(cr.evaluator, "overlay", None) if cr is not None else None
            if frame is None or overlay is None:
                continue
            try:
                polygons, boxes = overlay(frame)
                jpeg = snapshot(frame, polygons, boxes, f"{a['rule_id']} {a['device_id']} {a['observed_at']}")
            except Exception:  # evidence is a courtesy: never lose the alert over it
                logger.exception("snapshot for %s failed", a["rule_id"])
                continue
            if jpeg is not None:
                a["evidence"]["snapshot_jpeg_b64"] = jpeg
                a["evidence"]["frame_ts"] = frame.ts
