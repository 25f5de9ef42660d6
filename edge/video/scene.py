"""Per-camera scene models: the state a camera's frames build up, shared by every rule on that camera.

For each frame (already decoded small and gray) it keeps a running-average background and gives the
motion mask, and measures what the tamper rule needs against the camera's own learned baseline.

- **Light is not motion.** Before comparing a frame with the background, the background is re-lit (for the
  comparison only; the stored background keeps learning from frames as before): the
  ratio of frame to background is taken on a coarse grid (40 px wide) and median-filtered, which keeps a
  light field (a fade, a cloud's shadow, a headlight sweep, even with a sharp edge) and drops anything
  smaller than half the filter window (a person). Only what differs from the re-lit background is motion.
  A change of most of the view at once is still a change of light and is learned at once.
- **A moving or turned camera is not motion.** The translation from the reference view
  reference view is measured by template matching (OpenCV `matchTemplate`, the middle of the reference
  searched 3/8 of the width either way) on an 80 px wide copy: a view whose offset changes by more than 2 %
  of its width between frames reports no motion, and the offset from the reference
  view (`offset`, in view widths) is what `tamper: shifted` judges, with the likeness to the reference
  (`similarity`) for a view that no longer resembles it at all.
- **Covers:** the view is cut into 8x6 cells and each cell's texture (spread over brightness, so light does
  not change it) is compared with its learned baseline; `covered` is the share of textured cells whose
  texture is gone (a hand, a cloth, a bag, sprayed paint).
- **Baselines are learned only from normal frames**, slowly (the reference view follows a few minutes of a
  normal view), so a covered, blurred or turned view is never learned as the reference. The learned
  baselines can be dumped and restored, so a restart does not learn a tampered view as normal.

Plain numpy/OpenCV, no I/O.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

DIFF_LEVEL = 25  # gray levels a pixel must differ from the (re-lit) background to count as changed
GLOBAL_CHANGE = 0.5  # fraction of the frame changed at once, after re-lighting, that is a change of light
ALPHA = 0.05  # background learning rate per frame
WARMUP = 8  # frames before tamper measurements are trusted
REF_RATE = 0.01  # reference view and cell textures: learning rate per normal frame
THUMB = (32, 18)
SMALL_W = 80  # width of the copy on which the view's translation, likeness and texture are measured
LIGHT_W, LIGHT_K = 40, 5  # coarse grid width and median window (cells) of the light field
LIGHT_STEADY = 3  # a light field within 3/64 (5 %) of 1 everywhere is no change of light
MATCH_MIN = 0.6  # a weaker best match says nothing about a translation
MATCH_MARGIN = 0.2  # ... nor one hardly better than the match where the middle was
MOVING = 0.02  # translation between frames (in view widths) above which the camera is moving
CELLS = (8, 6)
MEASURE_EVERY = 0.5  # seconds of a camera's time between view measurements
MEASURE_ON_CHANGE = 0.08  # ... or at once when this share of the view changed
PRESENCE_EVERY = 0.5  # seconds of a camera's time between updates of the presence model
PRESENCE_MAX = 600.0  # what has stayed this long (a parked car, a left bin) becomes background
HOLD_RATE = 0.1  # learning rate of the presence model's background per update, where nothing is present
PRESENCE_GROW = 2  # pixels a presence region may spread into the foreground per update
SETTLE = 5  # frames a view must look normal again before motion counts and baselines learn
_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))


@dataclass(slots=True)
class SceneState:
    """What one frame showed, for the rules."""

    mask: np.ndarray  # uint8 0/255 motion mask at working size
    changed: float  # fraction of the frame that differed from the re-lit background
    relit: bool  # a change of the whole view (light step, cover, blur, turned or moving camera): no motion
    learning: bool  # still in warm-up: tamper measurements not yet meaningful
    std: float  # brightness spread: near 0 when the lens is covered or the signal lost
    sharpness: float
    sharp_base: float
    similarity: float  # normalised correlation with the learned reference view, -1..1
    offset: float = 0.0  # translation from the reference view, in view widths
    covered: float = 0.0  # share of the textured cells whose texture is gone
    moving: bool = False  # the view moved since the last frame (pan, tilt, a knock)
    moved: int = 0  # pixels set in `mask`
    ts: float | None = None  # the frame's time (camera clock)
    gray: np.ndarray | None = None  # the frame as compared (blurred, working size), for the presence model
    owner: CameraScene | None = None

    def presence(self) -> np.ndarray:
        """0/255 mask of what came into the view moving and is still there, moving or standing still
        (computed on demand, at most every PRESENCE_EVERY of the camera's time: only dwell rules ask)."""
        if self.owner is None or self.gray is None:
            return np.zeros_like(self.mask)
        return self.owner.present(self)


@dataclass
class CameraScene:
    frames: int = 0
    bg: np.ndarray | None = None
    bg8: np.ndarray | None = None
    sharp_base: float = 0.0
    ref: np.ndarray | None = None
    ref_pc: np.ndarray | None = None
    cells: np.ndarray | None = None  # learned texture per cell
    measured_at: float = float("-inf")
    # similarity, offset, covered, moving, std, sharpness: the last view measurement
    view: tuple[float, float, float, bool, float, float] = (1.0, 0.0, 0.0, False, 0.0, 0.0)
    sample: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # what the last measurement learns from
    bg_light: np.ndarray | None = None  # the background on the light field's coarse grid
    hold: np.ndarray | None = None  # presence model: background that does not learn where something is present
    hold_light: np.ndarray | None = None  # ... on the light field's coarse grid
    present_mask: np.ndarray | None = None  # ... what is present (0/255)
    present_age: np.ndarray | None = None  # ... updates each present pixel has been present in a row
    present_at: float = float("-inf")
    calm: int = SETTLE  # consecutive frames with nothing odd (a view that was odd must settle first)
    _light: np.ndarray | None = None  # the last frame on the light field's coarse grid

    def update(self, gray: np.ndarray, ts: float | None = None) -> SceneState:
        """One frame (reduced gray); `ts` (seconds) paces the view measurements (likeness, offset, covers)
        to one per MEASURE_EVERY of a camera's time, which is plenty for tamper holds of seconds."""
        g = cv2.blur(gray, (3, 3))
        self.frames += 1
        h, w = g.shape
        small = cv2.resize(g, (SMALL_W, max(8, round(SMALL_W * h / w))), interpolation=cv2.INTER_AREA)
        due = ts is None or self.frames <= WARMUP + 1 or not 0 <= ts - self.measured_at < MEASURE_EVERY
        light = cv2.resize(small, (LIGHT_W, max(4, round(LIGHT_W * h / w))), interpolation=cv2.INTER_AREA)
        if self.bg is None or self.bg.shape != g.shape or self.bg_light is None:
            self.bg = g.astype(np.float32)
            self.bg8 = g.copy()
            self.bg_light = light.astype(np.float32)
            mask, changed = np.zeros_like(g), 0.0
        else:
            diff = cv2.absdiff(g, self._relight(light))
            _, mask = cv2.threshold(diff, DIFF_LEVEL, 255, cv2.THRESH_BINARY)
            changed = cv2.countNonZero(mask) / mask.size
        measure = due or changed >= MEASURE_ON_CHANGE  # a big change (a pan starting) is measured at once
        if measure:
            self.measured_at = ts if ts is not None else 0.0
            self._measure(g, small)
        similarity, offset, covered, moving, std, sharpness = self.view
        sharp_base = self.sharp_base or sharpness
        if self.frames > 1:
            # Not motion in a zone: a change of most of the view (learn the new look at once), or a view that
            # is covered, blurred, turned or moving (keep the old background for when it comes back, and leave
            # the rest to the tamper measurements). A view that was odd stays odd until it is clearly normal
            # again and has stayed so for SETTLE frames.
            strange = self.frames > WARMUP and (
                similarity < SHIFT_BELOW or offset >= SHIFT_OFFSET or covered >= COVER_MIN
                or sharpness < DEFOCUS_RATIO * sharp_base
                or (self.calm < SETTLE and not _clearly_normal(std, sharpness, sharp_base, similarity, offset,
                                                                covered)))
            self.calm = 0 if strange or moving else self.calm + 1
            odd = self.calm < SETTLE
            relit = changed > GLOBAL_CHANGE or odd
            assert self.bg8 is not None and self.bg_light is not None
            if changed > GLOBAL_CHANGE and not odd:
                self.bg[:] = g
                self.bg8 = g.copy()
                self.bg_light[:] = light
                mask[:] = 0
            elif odd:
                mask[:] = 0
            else:
                mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL)  # speckle (noise, rain) is not motion
                cv2.accumulateWeighted(g, self.bg, ALPHA)  # the stored background follows the light by itself
                cv2.accumulateWeighted(light, self.bg_light, ALPHA)
                self.bg8 = cv2.convertScaleAbs(self.bg)
        else:
            relit = False
        learning = self.frames <= WARMUP
        state = SceneState(mask, changed, relit, learning, std, sharpness, sharp_base, similarity, offset, covered,
                           moving, cv2.countNonZero(mask) if changed else 0, ts, g, self)
        self._light = light
        if measure and (learning or (self.calm >= SETTLE and _clearly_normal(std, sharpness, sharp_base, similarity,
                                                                             offset, covered))):
            self._learn(sharpness, learning)
        return state

    def _measure(self, g: np.ndarray, small: np.ndarray) -> None:
        """Likeness to the reference, offset from it (and whether it moved since the last measurement),
        covered share, brightness spread and sharpness, kept in `self.view` until the next measurement."""
        std = float(cv2.meanStdDev(g)[1][0, 0])
        lap = cv2.Laplacian(g, cv2.CV_16S, ksize=1)
        sharpness = float(cv2.meanStdDev(lap)[1][0, 0]) ** 2 / (std * std + 1.0)  # dimming is not defocus
        thumb = cv2.resize(small, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
        similarity = _ncc(thumb, self.ref) if self.ref is not None else 1.0
        pc = small.astype(np.float32)
        offset = _shift(self.ref_pc, pc) if self.ref_pc is not None and self.ref_pc.shape == pc.shape else 0.0
        # moving: the view's offset from the reference changed since the last measurement (measured against
        # the reference, a mostly still background, so a person crossing the middle is not a moving camera)
        moving = abs(offset - self.view[1]) > MOVING
        texture = _textures(pc)
        covered = _covered(texture, self.cells) if self.cells is not None else 0.0
        self.view = (similarity, offset, covered, moving, std, sharpness)
        self.sample = (thumb, pc, texture)

    def _relight(self, light: np.ndarray) -> np.ndarray:
        assert self.bg8 is not None and self.bg_light is not None
        return _relit(self.bg8, self.bg_light, light)

    def present(self, state: SceneState) -> np.ndarray:
        """The presence model, brought up to this frame (see `SceneState.presence`). A second background
        (`hold`) learns everywhere except where something is present; what differs from it (re-lit like the
        motion background) is present if it is connected to motion or to what was present before, so a
        person who walked in and stopped stays present while the motion background learns them away.
        Nothing is updated while the view is odd (tamper, a moving camera); what stays PRESENCE_MAX
        becomes background."""
        g, ts = state.gray, state.ts
        assert g is not None
        if (self.present_mask is not None and self.present_mask.shape == g.shape and ts is not None
                and 0 <= ts - self.present_at < PRESENCE_EVERY):
            return self.present_mask
        self.present_at = ts if ts is not None else 0.0
        light = self._light
        assert light is not None
        if (self.hold is None or self.hold_light is None or self.present_mask is None or self.present_age is None
                or self.hold.shape != g.shape):
            self.hold, self.hold_light = g.astype(np.float32), light.astype(np.float32)
            self.present_mask = np.zeros_like(g)
            self.present_age = np.zeros(g.shape, np.uint16)
            return self.present_mask
        if state.relit and state.changed <= GLOBAL_CHANGE:  # an odd view: keep what was present as it was
            return self.present_mask
        hold8 = cv2.convertScaleAbs(self.hold)
        _, fg = cv2.threshold(cv2.absdiff(g, _relit(hold8, self.hold_light, light)), DIFF_LEVEL, 255,
                              cv2.THRESH_BINARY)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, _KERNEL)
        seed = cv2.bitwise_or(cv2.dilate(self.present_mask, _KERNEL, iterations=PRESENCE_GROW), state.mask)
        present = cv2.bitwise_and(fg, seed)
        if cv2.countNonZero(present) > GLOBAL_CHANGE * present.size:  # not presence: a new view; start over
            present[:] = 0
            self.hold[:] = g
            self.hold_light[:] = light
        here = present > 0
        age = np.where(here, cv2.add(self.present_age, 1), 0).astype(np.uint16)  # updates present in a row
        absorbed = age > PRESENCE_MAX / PRESENCE_EVERY
        if absorbed.any():
            self.hold[absorbed] = g[absorbed]
            present[absorbed] = 0
            age[absorbed] = 0
        cv2.accumulateWeighted(g, self.hold, HOLD_RATE, mask=cv2.bitwise_not(present))
        cv2.accumulateWeighted(light, self.hold_light, HOLD_RATE)  # the median field drops what is present
        self.present_mask, self.present_age = present, age
        return present

    def baseline(self) -> dict[str, Any] | None:
        """What the camera has learned that is worth keeping across a restart (the background is not)."""
        if self.ref is None or self.frames <= WARMUP:
            return None
        out: dict[str, Any] = {"sharp_base": round(self.sharp_base, 6),
                               "ref": [round(float(v), 1) for v in self.ref.ravel()]}
        if self.ref_pc is not None and self.cells is not None:
            out["ref_pc"] = {"h": int(self.ref_pc.shape[0]), "v": [round(float(v), 1) for v in self.ref_pc.ravel()]}
            out["cells"] = [round(float(v), 4) for v in self.cells.ravel()]
        return out

    @classmethod
    def restored(cls, data: dict[str, Any]) -> CameraScene:
        """A scene that judges tamper against its saved baseline from the first frame, instead of
        learning whatever the camera shows at start (a covered or blurred view)."""
        ref = np.asarray(data["ref"], np.float32)
        if ref.size != THUMB[0] * THUMB[1]:
            raise ValueError(f"reference view has {ref.size} values, expected {THUMB[0] * THUMB[1]}")
        scene = cls(frames=WARMUP, sharp_base=float(data["sharp_base"]), ref=ref.reshape(THUMB[1], THUMB[0]))
        if "ref_pc" in data and "cells" in data:  # saved by a version that measured offsets and covers
            pc = data["ref_pc"]
            scene.ref_pc = np.asarray(pc["v"], np.float32).reshape(int(pc["h"]), SMALL_W)
            cells = np.asarray(data["cells"], np.float32)
            if cells.size != CELLS[0] * CELLS[1]:
                raise ValueError(f"cell textures have {cells.size} values, expected {CELLS[0] * CELLS[1]}")
            scene.cells = cells.reshape(CELLS[1], CELLS[0])
        return scene

    def _learn(self, sharpness: float, learning: bool) -> None:
        """Baselines follow a measured frame that looked clearly normal (all of them during warm-up)."""
        rate = 0.2 if learning else REF_RATE  # warm-up settles the baselines fast, then they only follow
        if self.ref is None or not self.sharp_base:
            self.sharp_base = sharpness
        else:
            self.sharp_base += (0.2 if learning else 0.05) * (sharpness - self.sharp_base)
        if self.sample is None:
            return
        thumb, pc, texture = self.sample
        if self.ref is None or self.ref_pc is None or self.cells is None or self.ref_pc.shape != pc.shape:
            self.ref, self.ref_pc, self.cells = thumb.copy(), pc.copy(), texture.copy()
            return
        cv2.accumulateWeighted(thumb, self.ref, rate)
        cv2.accumulateWeighted(pc, self.ref_pc, rate)
        cv2.accumulateWeighted(texture, self.cells, rate)


def _relit(bg8: np.ndarray, bg_light: np.ndarray, light: np.ndarray) -> np.ndarray:
    """`bg8` as it would look in the light of the frame whose coarse copy is `light` (uint8, working size):
    the ratio of the frame to the background on the coarse grid, median-filtered, scales the background.
    8-bit OpenCV arithmetic throughout, so it costs about as much as the comparison itself."""
    ratio = cv2.divide(cv2.add(light, 8), cv2.add(cv2.convertScaleAbs(bg_light), 8), scale=64)
    field = cv2.medianBlur(ratio, LIGHT_K)
    low, high, _, _ = cv2.minMaxLoc(field)
    if low >= 64 - LIGHT_STEADY and high <= 64 + LIGHT_STEADY:
        return bg8  # the light has not changed (most frames): nothing to re-light
    h, w = bg8.shape
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.multiply(bg8, field, scale=1 / 64)


def _clearly_normal(std: float, sharpness: float, sharp_base: float, similarity: float, offset: float,
                    covered: float) -> bool:
    """Well inside every tamper threshold: what the baselines learn from, and what ends an odd view (so a view
    that is partly covered or a little turned, not yet enough to alarm, neither wears the baseline down to
    itself nor counts as back)."""
    return (std >= 1.5 * BLACKOUT_STD and similarity >= SHIFT_BELOW + 0.2 and offset < SHIFT_OFFSET / 2
            and covered < COVER_MIN / 2 and sharpness >= 2 * DEFOCUS_RATIO * sharp_base)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised correlation of two float32 images of one size (-1..1; 0 when either is flat)."""
    ma, sa = cv2.meanStdDev(a)
    mb, sb = cv2.meanStdDev(b)
    den = float(sa[0, 0] * sb[0, 0])
    if den < 1e-6:
        return 0.0
    return (float(np.dot(a.ravel(), b.ravel())) / a.size - float(ma[0, 0] * mb[0, 0])) / den


def _shift(ref_f: np.ndarray, cur: np.ndarray) -> float:
    """How far the middle of `ref` moved in `cur`, in view widths: the best match of the central 25 % x 50 %
    of `ref` (normalised cross-correlation), searched over 3/8 of the width either way. 0 when the
    middle has no texture to go by, matches nowhere well, or matches about as well where it was (people
    crossing, repeated structure); the likeness to the reference judges a view that is wholly different."""
    h, w = ref_f.shape
    tw, th = int(w * 0.25), int(h * 0.5)
    x0, y0 = (w - tw) // 2, (h - th) // 2
    tpl = ref_f[y0:y0 + th, x0:x0 + tw]
    if float(cv2.meanStdDev(tpl)[1][0, 0]) < 2.0:
        return 0.0
    res = cv2.matchTemplate(cur, tpl, cv2.TM_CCOEFF_NORMED)
    _, peak, _, (mx, my) = cv2.minMaxLoc(res)
    if peak < MATCH_MIN or peak - float(res[y0, x0]) < MATCH_MARGIN:
        return 0.0  # no good match, or the middle still matches about as well where it was
    return math.hypot(mx - x0, my - y0) / w


def _textures(small: np.ndarray) -> np.ndarray:
    """Texture per cell: brightness spread over mean brightness (a change of light leaves it alone)."""
    mean = cv2.resize(small, CELLS, interpolation=cv2.INTER_AREA)
    square = cv2.resize(small * small, CELLS, interpolation=cv2.INTER_AREA)
    spread = cv2.sqrt(cv2.max(square - mean * mean, 0.0))
    return spread / (mean + 16.0)


def _covered(texture: np.ndarray, base: np.ndarray) -> float:
    textured = base > TEXTURED
    n = int(textured.sum())
    if n == 0:
        return 0.0
    gone = textured & (texture < COVER_TEXTURE * base)
    return float(gone.sum()) / n


# defaults of the tamper rule; the scene only learns from frames that none of them flags
BLACKOUT_STD = 6.0
DEFOCUS_RATIO = 0.3
SHIFT_BELOW = 0.5
SHIFT_OFFSET = 0.1  # an offset from the reference view of a tenth of its width is a turned camera
COVER_MIN = 0.25  # a third of the view covered is a cover (a quarter of its textured cells, with some slack)
COVER_TEXTURE = 0.35  # a cell whose texture fell below this share of its baseline is covered
TEXTURED = 0.02  # cells with less texture than this (sky, a blank wall) say nothing about covers


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

    def update(self, device: str, gray: np.ndarray, ts: float | None = None) -> SceneState:
        cam = self.cameras.get(device)
        if cam is None:
            cam = self.cameras[device] = CameraScene()
        return cam.update(gray, ts)
