"""Per-camera scene models: the state a camera's frames build up, shared by every rule on that camera.

For each frame (already decoded small and gray) it keeps a running-average background and gives the
motion mask; notices a global change of light (most of the frame changed at once) and recalibrates
instead of reporting motion; and measures what the tamper rule needs against the camera's own learned
baseline: brightness spread (blackout), sharpness (defocus) and likeness to a reference view (shifted).
Plain numpy/OpenCV, no I/O. The learned baselines (sharpness, reference view) can be dumped and restored,
so a restart does not learn a covered or blurred view as normal; the background is learned again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

DIFF_LEVEL = 25  # gray levels a pixel must differ from the background to count as changed
GLOBAL_CHANGE = 0.5  # fraction of the frame changed at once that is a change of light, not motion
ALPHA = 0.05  # background learning rate per frame
WARMUP = 8  # frames before tamper measurements are trusted
THUMB = (32, 18)
_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))


@dataclass(slots=True)
class SceneState:
    """What one frame showed, for the rules."""

    mask: np.ndarray  # uint8 0/255 motion mask at working size
    changed: float  # fraction of the frame that differed from the background
    relit: bool  # a change of the whole view (light, cover, blur, turned camera): no motion reported
    learning: bool  # still in warm-up: tamper measurements not yet meaningful
    std: float  # brightness spread: near 0 when the lens is covered or the signal lost
    sharpness: float
    sharp_base: float
    similarity: float  # normalised correlation with the learned reference view, -1..1


@dataclass
class CameraScene:
    frames: int = 0
    bg: np.ndarray | None = None
    bg8: np.ndarray | None = None
    sharp_base: float = 0.0
    ref: np.ndarray | None = None

    def update(self, gray: np.ndarray) -> SceneState:
        g = cv2.blur(gray, (3, 3))
        self.frames += 1
        std = float(cv2.meanStdDev(g)[1][0, 0])
        lap = cv2.Laplacian(g, cv2.CV_16S, ksize=1)
        sharpness = float(cv2.meanStdDev(lap)[1][0, 0]) ** 2 / (std * std + 1.0)  # dimming is not defocus
        thumb = cv2.resize(g, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
        similarity = self._similarity(thumb)
        if self.bg is None or self.bg.shape != g.shape:
            self.bg = g.astype(np.float32)
            self.bg8 = g.copy()
            mask, changed, relit = np.zeros_like(g), 0.0, False
        else:
            assert self.bg8 is not None
            diff = cv2.absdiff(g, self.bg8)
            _, mask = cv2.threshold(diff, DIFF_LEVEL, 255, cv2.THRESH_BINARY)
            changed = cv2.countNonZero(mask) / mask.size
            # A change of the whole view is not motion in a zone. Light (lamps, cloud, IR switch, a cover):
            # learn the new look at once. Blur or a turned camera: keep the old background for when the
            # view comes back, and leave the rest to the tamper measurements.
            odd = self.frames > WARMUP and (similarity < SHIFT_BELOW or sharpness < DEFOCUS_RATIO * self.sharp_base)
            relit = changed > GLOBAL_CHANGE or odd
            if changed > GLOBAL_CHANGE:
                self.bg[:] = g
                self.bg8 = g.copy()
                mask[:] = 0
            elif odd:
                mask[:] = 0
            else:
                mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL)  # speckle (noise, rain) is not motion
                cv2.accumulateWeighted(g, self.bg, ALPHA)
                self.bg8 = cv2.convertScaleAbs(self.bg)
        learning = self.frames <= WARMUP
        state = SceneState(mask, changed, relit, learning, std, sharpness, self.sharp_base or sharpness, similarity)
        if learning or self._normal(state):
            self._learn(sharpness, thumb)
        return state

    def baseline(self) -> dict[str, Any] | None:
        """What the camera has learned that is worth keeping across a restart (the background is not)."""
        if self.ref is None or self.frames <= WARMUP:
            return None
        return {"sharp_base": round(self.sharp_base, 6), "ref": [round(float(v), 1) for v in self.ref.ravel()]}

    @classmethod
    def restored(cls, data: dict[str, Any]) -> CameraScene:
        """A scene that judges tamper against its saved baseline from the first frame, instead of
        learning whatever the camera shows at start (a covered or blurred view)."""
        ref = np.asarray(data["ref"], np.float32)
        if ref.size != THUMB[0] * THUMB[1]:
            raise ValueError(f"reference view has {ref.size} values, expected {THUMB[0] * THUMB[1]}")
        return cls(frames=WARMUP, sharp_base=float(data["sharp_base"]), ref=ref.reshape(THUMB[1], THUMB[0]))

    def _similarity(self, thumb: np.ndarray) -> float:
        if self.ref is None:
            return 1.0
        a = thumb - thumb.mean()
        b = self.ref - self.ref.mean()
        den = float(np.sqrt((a * a).sum() * (b * b).sum()))
        return float((a * b).sum()) / den if den > 1e-6 else 0.0

    def _normal(self, s: SceneState) -> bool:
        return s.std >= BLACKOUT_STD and s.similarity >= SHIFT_BELOW and s.sharpness >= DEFOCUS_RATIO * s.sharp_base

    def _learn(self, sharpness: float, thumb: np.ndarray) -> None:
        if self.ref is None:
            self.ref, self.sharp_base = thumb, sharpness
        else:
            self.sharp_base += 0.05 * (sharpness - self.sharp_base)
            cv2.accumulateWeighted(thumb, self.ref, 0.02)


# defaults of the tamper rule; the scene only learns from frames that none of them flags
BLACKOUT_STD = 6.0
DEFOCUS_RATIO = 0.3
SHIFT_BELOW = 0.5


class Scenes:
    """Scene models by camera; kept across rule reloads, since they belong to the camera, not to a rule."""

    def __init__(self) -> None:
        self.cameras: dict[str, CameraScene] = {}

    def dump(self) -> dict[str, str]:
        """Baselines by camera, as JSON texts."""
        out = {}
        for device, cam in self.cameras.items():
            b = cam.baseline()
            if b is not None:
                out[device] = json.dumps(b, separators=(",", ":"))
        return out

    def load(self, saved: dict[str, str]) -> int:
        """Restore saved baselines; a damaged one is skipped (that camera learns again)."""
        n = 0
        for device, text in saved.items():
            try:
                self.cameras[device] = CameraScene.restored(json.loads(text))
                n += 1
            except (ValueError, KeyError, TypeError):
                continue
        return n

    def update(self, device: str, gray: np.ndarray) -> SceneState:
        cam = self.cameras.get(device)
        if cam is None:
            cam = self.cameras[device] = CameraScene()
        return cam.update(gray)
