"""Real footage for video tests: OpenCV's `vtest.avi` (Debian's opencv-doc, see simulators/footage.py),
re-encoded once per machine into the cache and shared by the tests that need it."""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from pathlib import Path

import numpy as np

from simulators import footage


def h264(name: str, *, seconds: float = 60.0, gop: int = 10, size: tuple[int, int] | None = None,
         transform: Callable[[int, np.ndarray], np.ndarray] | None = None) -> Path:
    """vtest.avi's first `seconds` (10 fps) as H.264 MP4 with a keyframe every `gop` frames, cached by name
    (two test processes wanting the same file wait for one to make it)."""
    dest = footage.cache_dir() / f"{name}.mp4"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not dest.is_file():
            footage.encode(footage.frames(footage.clip(), int(seconds * 10)), dest, 10, gop, size, transform)
    return dest
