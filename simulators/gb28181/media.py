"""The emulated platform's media: real footage remuxed to MPEG-PS once per file (PyAV, FFmpeg's `vob` muxer
with `h264_mp4toannexb`), and each INVITE's call."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from pathlib import Path

import av
from av.bitstream import BitStreamFilterContext

from gridwatch.core.gb28181 import rtp


@dataclass
class Call:
    """An INVITE this device answered: its offer, and the thread streaming after the ACK."""

    channel: str
    offer: rtp.Sdp
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    packets: int = 0


_PS: dict[Path, tuple[bytes, list[tuple[float, int]]]] = {}
_PS_LOCK = threading.Lock()


def ps_stream(path: Path) -> tuple[bytes, list[tuple[float, int]]]:
    """An H.264 file as the MPEG-2 Program Stream a GB/T 28181 camera sends (FFmpeg's `vob` muxer through
    PyAV; the MP4's length-prefixed H.264 turned into Annex B start codes by the `h264_mp4toannexb` bitstream
    filter, as PS carries it), with (seconds, byte offset) marks to pace it by. Made once per file."""
    with _PS_LOCK:  # forty INVITEs at once make it once
        if path not in _PS:
            _PS[path] = _remux_ps(path)
        return _PS[path]


def _remux_ps(path: Path) -> tuple[bytes, list[tuple[float, int]]]:
    buf = io.BytesIO()
    marks: list[tuple[float, int]] = []
    with av.open(str(path)) as inp:
        vs = inp.streams.video[0]
        bsf = BitStreamFilterContext("h264_mp4toannexb", vs)
        out = av.open(buf, "w", format="vob")
        o = out.add_stream_from_template(vs)
        base = float(vs.time_base) if vs.time_base is not None else 1 / 90_000
        for pkt in inp.demux(vs):
            if pkt.dts is None:
                continue
            t = (pkt.pts if pkt.pts is not None else pkt.dts) * base
            for p in bsf.filter(pkt):
                p.stream = o
                out.mux(p)
            marks.append((max(0.0, t), buf.tell()))
        out.close()
    data = buf.getvalue()
    marks.append((marks[-1][0] + 0.1 if marks else 0.0, len(data)))
    return data, marks
