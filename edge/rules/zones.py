"""Zones in normalised image coordinates: validation (points in [0,1], simple polygons), masks, and the
regions a mask shows (for evidence)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

import cv2
import numpy as np
from pydantic import AfterValidator, Field

Point = tuple[Annotated[float, Field(ge=0.0, le=1.0)], Annotated[float, Field(ge=0.0, le=1.0)]]


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    return (d1 > 0) != (d2 > 0) and (d3 > 0) != (d4 > 0) and d1 * d2 < 0 and d3 * d4 < 0


def _simple(points: list[Point]) -> list[Point]:
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # neighbours through the closing edge
            if _segments_cross(*edges[i], *edges[j]):
                raise ValueError(f"polygon edges {i} and {j} cross: a zone must not intersect itself")
    area = 0.5 * abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in edges))
    if area <= 0.0:
        raise ValueError("polygon has no area")
    return points


Polygon = Annotated[list[Point], Field(min_length=3, max_length=64), AfterValidator(_simple)]


@lru_cache(maxsize=1024)
def _mask(points: tuple[Point, ...], h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    pts = np.array([[round(x * (w - 1)), round(y * (h - 1))] for x, y in points], np.int32)
    cv2.fillPoly(m, [pts], 255)
    return m


def mask(zone: list[Point] | None, ignore: list[list[Point]], shape: tuple[int, ...]) -> np.ndarray:
    """0/255 mask of `zone` (whole frame when None) minus the `ignore` polygons, at the frame's size."""
    h, w = shape[0], shape[1]
    return _zone_mask(tuple(map(tuple, zone)) if zone else None, tuple(tuple(map(tuple, p)) for p in ignore), h, w)


@lru_cache(maxsize=1024)
def _zone_mask(zone: tuple[Point, ...] | None, ignore: tuple[tuple[Point, ...], ...], h: int, w: int) -> np.ndarray:
    m = _mask(zone, h, w).copy() if zone else np.full((h, w), 255, np.uint8)
    for poly in ignore:
        m[_mask(poly, h, w) > 0] = 0
    m.setflags(write=False)
    return m


def regions(mask: Any, limit: int = 8) -> list[tuple[float, float, float, float]]:
    """Bounding boxes of the largest blobs of a 0/255 mask, in normalised coordinates."""
    h, w = mask.shape[:2]
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes = sorted((cv2.boundingRect(c) for c in contours), key=lambda b: -b[2] * b[3])[:limit]
    return [(x / w, y / h, bw / w, bh / h) for x, y, bw, bh in boxes]
