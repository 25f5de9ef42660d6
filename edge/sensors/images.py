"""Frame envelopes and image headers: what camera and thermal decoders share before any pixel is decoded.

A frame arrives as raw image bytes with `ts`/`seq` in MQTT v5 user properties, or (MQTT 3.1.1) as a JSON
envelope `{"ts", "seq", "<field>": base64}`. Headers are read by hand so that a frame claiming a huge size
is refused before the decoder allocates for it.
"""

from __future__ import annotations

import base64
import binascii
import struct

from edge.errors import Rejected
from edge.message import Message
from edge.sensors.common import Limits, load_object, parse_seq, parse_ts


def unwrap(msg: Message, limits: Limits, magic: bytes, b64_field: str) -> tuple[bytes, float, int | None]:
    """Image bytes, device time and sequence number of one frame message."""
    payload = msg.payload
    if len(payload) > limits.max_frame_bytes * 4 // 3 + 1024:
        raise Rejected("oversize", f"frame message is {len(payload)} bytes, limit {limits.max_frame_bytes}")
    if payload.startswith(magic):
        props = msg.properties
        ts_raw: object = props.get("ts")
        if isinstance(ts_raw, str) and ts_raw.lstrip("-").isdigit():
            ts_raw = int(ts_raw)
        ts = parse_ts(ts_raw, msg.received_at, limits)
        seq_raw = props.get("seq")
        try:
            seq = int(seq_raw) if seq_raw is not None else None
        except ValueError:
            raise Rejected("wrong_type", f"user property 'seq' must be an integer, got {seq_raw!r}") from None
        image = payload
    elif payload[:1] == b"{":
        body = load_object(payload)
        ts = parse_ts(body.get("ts"), msg.received_at, limits)
        seq = parse_seq(body)
        data = body.get(b64_field)
        if data is None:
            raise Rejected("missing_field", f"field {b64_field!r} is required")
        if not isinstance(data, str):
            raise Rejected("wrong_type", f"field {b64_field!r} must be a base64 string")
        try:
            image = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected("bad_base64", f"field {b64_field!r} is not valid base64") from None
    else:
        raise Rejected("bad_image", f"payload is neither an image of the expected format nor a JSON envelope "
                                    f"(starts with {payload[:4]!r})")
    if len(image) > limits.max_frame_bytes:
        raise Rejected("oversize", f"frame is {len(image)} bytes, limit {limits.max_frame_bytes}")
    return image, ts, seq


JPEG_SOI = b"\xff\xd8"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_header(data: bytes) -> tuple[int, int, int]:
    """(width, height, components) from a JPEG's frame header; Rejected if the stream is cut or corrupt."""
    if not data.startswith(JPEG_SOI):
        raise Rejected("bad_image", "not a JPEG (no start-of-image marker)")
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise Rejected("truncated_image", f"JPEG of {len(data)} bytes has no end-of-image marker (cut off?)")
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise Rejected("bad_image", f"JPEG marker expected at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        seg = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in _SOF:
            if i + 10 > n:
                break
            bits, h, w, comps = struct.unpack(">BHHB", data[i + 4:i + 10])
            if bits != 8:
                raise Rejected("bad_depth", f"JPEG has {bits}-bit samples, expected 8")
            return w, h, comps
        i += 2 + seg
    raise Rejected("bad_image", "JPEG has no frame header")


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_header(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR; Rejected if cut or corrupt."""
    if not data.startswith(PNG_MAGIC) or len(data) < 33 or data[12:16] != b"IHDR":
        raise Rejected("bad_image", "not a PNG (bad signature or header)")
    if not data.endswith(b"IEND\xaeB`\x82"):
        raise Rejected("truncated_image", f"PNG of {len(data)} bytes has no IEND chunk (cut off?)")
    w, h, depth, colour = struct.unpack(">IIBB", data[16:26])
    return w, h, depth, colour


def check_pixels(w: int, h: int, limits: Limits) -> None:
    if w <= 0 or h <= 0:
        raise Rejected("bad_image", f"image claims {w}x{h} pixels")
    if w * h > limits.max_frame_pixels:
        raise Rejected("oversize", f"image is {w}x{h} = {w * h} pixels, limit {limits.max_frame_pixels}")
