"""`tamper`: a camera without signal or fully covered (blackout), partly covered (covered), out of focus
(defocus), or turned away (shifted), judged against the camera's own learned baseline (edge/video/scene.py) and
held for `for` before firing. An episode carries one kind, the one most of its frames showed while it was
pending (a cover being put on passes through frames that look turned or blurred), from firing to resolving."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from edge.message import Event
from edge.rules.base import EvaluatorBase, Overlay, State, Strict, Verdict, WhenBase
from gridwatch.core.durations import Duration

if TYPE_CHECKING:
    from edge.rules.spec import RuleSpec
from edge.video.scene import BLACKOUT_STD, COVER_MIN, DEFOCUS_RATIO, SHIFT_BELOW, SHIFT_OFFSET

KEYS = ("tamper",)
HOLDING = 0.6  # an episode under way ends only when the view is well back: thresholds eased to this share
TamperKind = Literal["blackout", "covered", "defocus", "shifted"]
TAMPER_KINDS: tuple[TamperKind, ...] = ("blackout", "covered", "defocus", "shifted")


class TamperSpec(Strict):
    kinds: list[TamperKind] = Field(default_factory=lambda: list(TAMPER_KINDS), min_length=1)
    for_: Duration = Field(20.0, alias="for", description="the tamper must last this long before firing")
    clear_for: Duration = Field(0.0, description="the view must be back this long before resolving")
    blackout_std: float = Field(BLACKOUT_STD, gt=0, description="brightness spread under which the view is blank")
    defocus_ratio: float = Field(DEFOCUS_RATIO, gt=0, lt=1, description="sharpness below this share of baseline")
    shift_below: float = Field(SHIFT_BELOW, gt=-1, lt=1, description="likeness to the reference view below this")
    shift_offset: float = Field(SHIFT_OFFSET, gt=0, lt=1, description="offset from the reference view (in view "
                                                                        "widths) from which the camera is turned")
    cover_min: float = Field(COVER_MIN, gt=0, le=1, description="share of the textured view whose texture is gone "
                                                               "from which the lens is covered")


class Config(WhenBase):
    tamper: TamperSpec


class Evaluator(EvaluatorBase):
    def __init__(self, spec: RuleSpec, cfg: Config) -> None:
        self.cfg = cfg.tamper
        self.hold: float | None = cfg.for_ or self.cfg.for_
        self.clear_hold: float | None = cfg.clear_for or self.cfg.clear_for

    def accepts(self, ev: Event) -> bool:
        return ev.kind == "camera" and ev.scene is not None

    def classify(self, scene: Any, holding: bool = False) -> str | None:
        """The tamper a frame shows, if any. While an episode is under way (`holding`) every threshold is
        eased (hysteresis), so a frame or two that look nearly right in a pan or under a moving hand do not
        end it; a view that is really back is far inside them."""
        c = self.cfg
        ease = HOLDING if holding else 1.0
        if scene.std < c.blackout_std / ease:
            return "blackout" if "blackout" in c.kinds else None
        if scene.covered >= c.cover_min * ease:
            return "covered" if "covered" in c.kinds else None
        if "defocus" in c.kinds and scene.sharpness < c.defocus_ratio / ease * scene.sharp_base:
            return "defocus"
        if "shifted" in c.kinds and (scene.offset >= c.shift_offset * ease
                                     or scene.similarity < c.shift_below + (1 - ease) * 0.3):
            return "shifted"
        return None

    def observe(self, st: State, ev: Event) -> Verdict | None:
        scene = ev.scene
        assert scene is not None
        if scene.learning:
            return None
        found = self.classify(scene, holding="kinds" in st)
        if found is None:
            st.pop("kinds", None)
            return Verdict(False, ev.ts)
        kinds = st.setdefault("kinds", {})
        kinds[found] = kinds.get(found, 0) + 1
        episode = max(kinds, key=lambda k: kinds[k])  # the engine keeps the note it had when the alert fired
        return Verdict(True, ev.ts, round(scene.similarity, 3), note={"tamper": episode})

    def overlay(self, ev: Event) -> Overlay:
        return [], []
