"""Camera frames: `gw/{grid}/camera/{device}/frame`, a JPEG (ts/seq as v5 user properties) or the JSON
envelope `{"ts", "seq", "jpeg_b64"}`.

The frame is decoded once, straight to a reduced grayscale image near the working width (libjpeg scales
in the DCT, so this is cheaper than a full colour decode); the original bytes are kept for the evidence
snapshot, which is only drawn when an alert fires.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.errors import Rejected
from edge.message import Event, Message
from edge.sensors.common import Limits
from edge.sensors.images import check_pixels, jpeg_header, unwrap
from edge.topics import Topic

_REDUCED = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
            8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def reduction(width: int, work_width: int) -> int:
    """Largest libjpeg scale factor that keeps the image at least `work_width` wide."""
    f = 1
    while f < 8 and width // (f * 2) >= work_width:
        f *= 2
    return f


def decode(msg: Message, topic: Topic, limits: Limits) -> Event:
    image, ts, seq = unwrap(msg, limits, b"\xff\xd8", "jpeg_b64")
    w, h, comps = jpeg_header(image)
    check_pixels(w, h, limits)
    if comps not in (1, 3):
        raise Rejected("bad_channels", f"JPEG has {comps} colour components, expected 1 (gray) or 3 (colour)")
    gray = cv2.imdecode(np.frombuffer(image, np.uint8), _REDUCED[reduction(w, limits.work_width)])
    if gray is None:
        raise Rejected("corrupt_image", f"JPEG of {len(image)} bytes ({w}x{h}) could not be decoded")
    return Event(kind="camera", grid=topic.grid, device=topic.device, ts=ts, received_at=msg.received_at,
                 seq=seq, gray=gray, jpeg=image)
