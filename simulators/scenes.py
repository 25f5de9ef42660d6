"""Synthetic camera and thermal scenes, deterministic for a seed.

A camera looks at part of a textured panorama; people-sized figures walk along paths; the light can
change, rain speckle and sensor noise can be added; tamper is simulated by covering the lens, blurring it
or turning the camera to another part of the panorama. A thermal camera sees an ambient field with hot
spots that can grow. Events only: figures are plain shapes, nothing that could identify anyone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

KELVIN = 273.15


@dataclass(frozen=True)
class Walker:
    """A figure walking along `path` (normalised points) from time `start`, `speed` in view widths/s."""

    path: tuple[tuple[float, float], ...]
    start: float = 0.0
    speed: float = 0.15
    size: tuple[float, float] = (0.06, 0.28)  # width, height as fractions of the view
    shade: int = 40  # gray level of the figure (dark clothes on a brighter scene)

    def where(self, t: float) -> tuple[float, float] | None:
        """Position (feet) at time t, None before it starts or after it has arrived."""
        d = (t - self.start) * self.speed
        if d < 0:
            return None
        for a, b in zip(self.path, self.path[1:], strict=False):
            seg = math.dist(a, b)
            if d <= seg:
                f = d / seg if seg else 0.0
                return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
            d -= seg
        return None


@dataclass
class View:
    """What the camera shows at one instant."""

    walkers: list[Walker] = field(default_factory=list)
    light: float = 1.0  # gain on the scene (lights on, dusk, cloud)
    noise: float = 3.0  # sensor noise, gray levels (sigma)
    rain: float = 0.0  # fraction of pixels hit by rain speckle
    covered: bool = False
    blur: bool = False
    turned: bool = False


class CameraSim:
    def __init__(self, seed: int = 1, width: int = 640, height: int = 360) -> None:
        self.w, self.h = width, height
        self.rng = np.random.default_rng(seed)
        self.panorama = self._panorama(np.random.default_rng(seed + 1000), width * 2, height)

    @staticmethod
    def _panorama(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
        img = np.zeros((h, w, 3), np.uint8)
        img[:] = (120, 130, 125)
        for _ in range(w * h // 2500):  # buildings, windows, bushes: texture the defocus check can see
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            bw, bh = int(rng.integers(8, 90)), int(rng.integers(8, 70))
            colour = tuple(int(c) for c in rng.integers(40, 230, 3))
            cv2.rectangle(img, (x, y), (x + bw, y + bh), colour, -1)
        for _ in range(w * h // 6000):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.circle(img, (x, y), int(rng.integers(3, 25)), tuple(int(c) for c in rng.integers(30, 220, 3)), -1)
        return img

    def frame(self, t: float, view: View | None = None) -> np.ndarray:
        v = view or View()
        if v.covered:
            img: np.ndarray = np.full((self.h, self.w, 3), 8, np.uint8)
        else:
            x0 = self.w if v.turned else 0
            img = self.panorama[:, x0:x0 + self.w].copy()
            for walker in v.walkers:
                pos = walker.where(t)
                if pos is None:
                    continue
                fw, fh = walker.size[0] * self.w, walker.size[1] * self.h
                cx, feet = pos[0] * self.w, pos[1] * self.h
                body = (int(cx - fw / 2), int(feet - fh * 0.8), int(cx + fw / 2), int(feet))
                cv2.rectangle(img, body[:2], body[2:], (walker.shade,) * 3, -1)
                cv2.circle(img, (int(cx), int(feet - fh * 0.9)), max(2, int(fw / 2.5)), (walker.shade + 20,) * 3, -1)
            if v.blur:
                img = cv2.GaussianBlur(img, (0, 0), 9)
            if v.light != 1.0:
                img = cv2.convertScaleAbs(img, alpha=v.light)
        if v.noise > 0:
            img = cv2.add(img, self.rng.normal(0, v.noise, img.shape).astype(np.int16), dtype=cv2.CV_8U)
        if v.rain > 0:
            drops = self.rng.random((self.h, self.w)) < v.rain
            img[drops] = 235
        return img

    def jpeg(self, t: float, view: View | None = None, quality: int = 85) -> bytes:
        ok, buf = cv2.imencode(".jpg", self.frame(t, view), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return buf.tobytes()


@dataclass(frozen=True)
class HotSpot:
    """A spot at (x, y) normalised whose peak rises from ambient by `rate` °C/s from `start`, up to `peak`."""

    x: float
    y: float
    start: float = 0.0
    rate: float = 5.0
    peak: float = 300.0
    radius: float = 0.06  # fraction of the frame width

    def temp(self, t: float, ambient: float) -> float:
        return min(self.peak, ambient + max(0.0, t - self.start) * self.rate)


class ThermalSim:
    def __init__(self, seed: int = 1, width: int = 160, height: int = 120, ambient: float = 22.0) -> None:
        self.w, self.h, self.ambient = width, height, ambient
        self.rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self.yy, self.xx = yy, xx
        self.field = ambient + 3.0 * (yy / height) + self.rng.normal(0, 0.3, (height, width)).astype(np.float32)

    def celsius(self, t: float, spots: Sequence[HotSpot] = ()) -> np.ndarray:
        temps: np.ndarray = self.field + self.rng.normal(0, 0.2, self.field.shape).astype(np.float32)
        for s in spots:
            peak = s.temp(t, self.ambient)
            if peak <= self.ambient:
                continue
            r = s.radius * self.w
            d2 = (self.xx - s.x * self.w) ** 2 + (self.yy - s.y * self.h) ** 2
            temps = np.maximum(temps, self.ambient + (peak - self.ambient) * np.exp(-d2 / (2 * (r / 2) ** 2)))
        return temps

    def png(self, t: float, spots: list[HotSpot] = ()) -> bytes:  # type: ignore[assignment]
        return encode_thermal(self.celsius(t, spots))


def encode_thermal(celsius: np.ndarray) -> bytes:
    ck = np.clip((celsius + KELVIN) * 100.0, 0, 65535).astype(np.uint16)
    ok, buf = cv2.imencode(".png", ck)
    assert ok
    return buf.tobytes()


Segment = tuple[float, float, View]  # from t0 to t1 (seconds), the camera shows this view


def timeline(segments: list[Segment], fps: float) -> list[tuple[float, View]]:
    """Frame times and views for a script of segments at `fps`."""
    out = []
    for t0, t1, view in segments:
        n = round((t1 - t0) * fps)
        out += [(t0 + i / fps, view) for i in range(n)]
    return out
