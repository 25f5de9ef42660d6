"""Evidence snapshots: the triggering frame as a JPEG with the rule's zone and the detected regions drawn on
it, capped in size. Only drawn when an alert fires, so the full colour decode costs nothing per frame."""

from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np

from edge.message import Event

MAX_BYTES = 160 * 1024
MAX_WIDTH = 960
ZONE = (0, 215, 255)  # BGR amber
IGNORE = (160, 160, 160)
REGION = (0, 0, 255)


def base_image(ev: Event) -> np.ndarray | None:
    if ev.jpeg is not None:
        return cv2.imdecode(np.frombuffer(ev.jpeg, np.uint8), cv2.IMREAD_COLOR)
    temps = ev.celsius
    if temps is None:
        return None
    lo, hi = float(temps.min()), float(temps.max())
    scaled = ((temps - lo) * (255.0 / max(hi - lo, 1e-3))).astype(np.uint8)
    img = cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO)
    return cv2.resize(img, (img.shape[1] * 4, img.shape[0] * 4), interpolation=cv2.INTER_NEAREST)


def snapshot(ev: Event, polygons: list[Any], boxes: list[tuple[float, float, float, float]],
             caption: str = "", max_bytes: int = MAX_BYTES) -> str | None:
    """Base64 JPEG of the frame with the first polygon as the zone, the others as ignore masks, and boxes."""
    img = base_image(ev)
    if img is None:
        return None
    if img.shape[1] > MAX_WIDTH:
        img = cv2.resize(img, (MAX_WIDTH, round(img.shape[0] * MAX_WIDTH / img.shape[1])), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    thick = max(1, w // 320)
    for i, poly in enumerate(polygons):
        if not poly:
            continue
        pts = np.array([[round(x * (w - 1)), round(y * (h - 1))] for x, y in poly], np.int32)
        cv2.polylines(img, [pts], True, ZONE if i == 0 else IGNORE, thick + (1 if i == 0 else 0))
    for x, y, bw, bh in boxes:
        cv2.rectangle(img, (round(x * w), round(y * h)), (round((x + bw) * w), round((y + bh) * h)), REGION, thick + 1)
    if caption:
        cv2.putText(img, caption[:80], (6, 18 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, (255, 255, 255),
                    thick, cv2.LINE_AA)
    quality = 80
    while True:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and (len(buf) <= max_bytes or quality <= 30 and img.shape[1] <= 240):
            return base64.b64encode(buf.tobytes()).decode("ascii") if len(buf) <= max_bytes else None
        if quality > 30:
            quality -= 15
        else:
            img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
