"""`tamper`: a camera covered or without signal (blackout), out of focus (defocus), or turned away
(shifted), judged against the camera's own learned baseline and held for `for` before firing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from edge.message import Event
from edge.rules.base import EvaluatorBase, Overlay, State, Strict, Verdict, WhenBase
from gridwatch.core.durations import Duration

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec
from edge.scene import BLACKOUT_STD, DEFOCUS_RATIO, SHIFT_BELOW

KEYS = ("tamper",)
TamperKind = Literal["blackout", "defocus", "shifted"]
TAMPER_KINDS: tuple[TamperKind, ...] = ("blackout", "defocus", "shifted")


class TamperSpec(Strict):
    kinds: list[TamperKind] = Field(default_factory=lambda: list(TAMPER_KINDS), min_length=1)
    for_: Duration = Field(20.0, alias="for", description="the tamper must last this long before firing")
    clear_for: Duration = Field(0.0, description="the view must be back this long before resolving")
    blackout_std: float = Field(BLACKOUT_STD, gt=0, description="brightness spread under which the view is blank")
    defocus_ratio: float = Field(DEFOCUS_RATIO, gt=0, lt=1, description="sharpness below this share of baseline")
    shift_below: float = Field(SHIFT_BELOW, gt=-1, lt=1, description="likeness to the reference view below this")


class Config(WhenBase):
    tamper: TamperSpec


class Evaluator(EvaluatorBase):
    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        self.cfg = cfg.tamper
        self.hold: float | None = cfg.for_ or self.cfg.for_
        self.clear_hold: float | None = cfg.clear_for or self.cfg.clear_for

    def accepts(self, ev: Event) -> bool:
        return ev.kind == "camera" and ev.scene is not None

    def classify(self, scene: Any) -> str | None:
        c = self.cfg
        if scene.std < c.blackout_std:
            return "blackout" if "blackout" in c.kinds else None
        if "defocus" in c.kinds and scene.sharpness < c.defocus_ratio * scene.sharp_base:
            return "defocus"
        if "shifted" in c.kinds and scene.similarity < c.shift_below:
            return "shifted"
        return None

    def observe(self, st: State, ev: Event) -> Verdict | None:
        scene = ev.scene
        assert scene is not None
        if scene.learning:
            return None
        found = self.classify(scene)
        if found is None:
            return Verdict(False, ev.ts)
        return Verdict(True, ev.ts, round(scene.similarity, 3), note={"tamper": found})

    def overlay(self, ev: Event) -> Overlay:
        return [], []
