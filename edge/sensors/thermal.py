"""Thermal frames: `gw/{grid}/thermal/{device}/frame`, a 16-bit single-channel PNG whose pixels are
temperatures in centikelvin (0.01 K), with the same metadata rules as camera frames (envelope field
`png_b64`). Decoded to a float32 array in degrees Celsius.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.errors import Rejected
from edge.message import Event, Message
from edge.sensors.common import Limits
from edge.sensors.images import PNG_MAGIC, check_pixels, png_header, unwrap
from edge.topics import Topic

KELVIN = 273.15


def decode(msg: Message, topic: Topic, limits: Limits) -> Event:
    image, ts, seq = unwrap(msg, limits, PNG_MAGIC, "png_b64")
    w, h, depth, colour = png_header(image)
    check_pixels(w, h, limits)
    if colour != 0:
        raise Rejected("bad_channels", f"PNG colour type {colour}, expected 0 (single-channel grayscale)")
    if depth != 16:
        raise Rejected("bad_depth", f"PNG is {depth}-bit, expected 16-bit centikelvin")
    raw = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
        raise Rejected("corrupt_image", f"PNG of {len(image)} bytes ({w}x{h}) could not be decoded")
    celsius = raw.astype(np.float32) * np.float32(0.01) - np.float32(KELVIN)
    return Event(kind="thermal", grid=topic.grid, device=topic.device, ts=ts, received_at=msg.received_at,
                 seq=seq, celsius=celsius)
