"""One camera stream read with PyAV (FFmpeg): open, demux, decode only what will be published, scale.

`read_stream()` yields `Sample`s (wall-clock time and a BGR image at the publish size) from an RTSP, HTTP
MJPEG or file source until the stream ends, fails or `stop` is set. Which frames are decoded is decided by
`Sampler`, a pure object: when the sampling interval is at least the stream's keyframe interval, only
keyframes go to the decoder (`keyframes: auto`), so a 1080p camera sampled every 2 s costs one I-frame
decode per 2 s and the demuxing of the rest; a camera with sparse keyframes falls back to decoding every
frame and keeping one per interval. Scaling and colour conversion are one swscale call (`reformat`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import av
import numpy as np

logger = logging.getLogger(__name__)

KeyframeMode = Literal["auto", "always", "never"]


@dataclass(slots=True)
class Sampler:
    """Which frames of a stream to decode and which to publish, from their times alone (pure)."""

    interval: float  # seconds between published frames
    mode: KeyframeMode = "auto"
    next_at: float = float("-inf")
    last_key: float | None = None
    key_gap: float | None = None  # seen interval between keyframes
    decoding_all: bool = field(init=False)

    def __post_init__(self) -> None:
        self.decoding_all = self.mode == "never"

    def keyframe(self, t: float) -> None:
        """A keyframe at stream time t: learn the keyframe interval and pick the decoding mode."""
        if self.last_key is not None and t > self.last_key:
            gap = t - self.last_key
            self.key_gap = gap if self.key_gap is None else 0.8 * self.key_gap + 0.2 * gap
            if self.mode == "auto":
                # keyframes further apart than the interval (with some slack) would thin the samples out
                self.decoding_all = self.key_gap > self.interval * 1.5
        self.last_key = t

    def decode(self, is_key: bool) -> bool:
        """Should this packet go to the decoder? Non-key packets only while decoding every frame."""
        return is_key or self.decoding_all

    def take(self, t: float) -> bool:
        """Publish the decoded frame at stream time t?"""
        if t + 1e-6 < self.next_at:
            return False
        # the next sample is due one interval on (not later than now + interval, so a stall does not burst)
        self.next_at = max(self.next_at + self.interval, t + self.interval * 0.5) \
            if self.next_at != float("-inf") else t + self.interval
        return True


@dataclass(slots=True)
class Sample:
    ts: float  # wall-clock time of the frame (epoch seconds)
    image: np.ndarray  # BGR, publish size
    width: int  # the stream's own size
    height: int


@dataclass
class StreamStats:
    """Counters of one camera, read by the gateway's metrics."""

    packets: int = 0
    decoded: int = 0
    published: int = 0
    decode_errors: int = 0
    reconnects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def open_container(url: str, rtsp_transport: str, timeout: float) -> av.container.InputContainer:
    options: dict[str, str] = {}
    if url.startswith("rtsp://") or url.startswith("rtsps://"):
        options["rtsp_transport"] = rtsp_transport
    return av.open(url, mode="r", options=options, timeout=(timeout, timeout))


def publish_size(width: int, height: int, publish_width: int) -> tuple[int, int]:
    """Scale to `publish_width` (never up), keeping the aspect ratio; even sizes for the JPEG encoder."""
    if width <= publish_width:
        return width - width % 2, height - height % 2
    h = round(height * publish_width / width)
    return publish_width, max(2, h - h % 2)


def read_stream(url: str, sampler: Sampler, publish_width: int, stop: threading.Event, stats: StreamStats, *,
                rtsp_transport: str = "tcp", timeout: float = 10.0, realtime: bool | None = None,
                clock: Callable[[], float] = time.time, on_open: Callable[[], None] | None = None,
                opener: Callable[[], av.container.InputContainer] | None = None) -> Iterator[Sample]:
    """Samples of one stream until it ends, fails (av.FFmpegError, OSError) or `stop` is set.

    `realtime`: pace a file at its own frame rate (playback); live sources are paced by the camera. The
    default paces files and nothing else. Frame times are the wall clock when the frame was read; for a
    paced file, the wall clock that its position in the file stands for. `opener`: a container opened some other
    way (a GB/T 28181 PS stream from RTP, `url` then only names it in logs), read as a live source."""
    container = opener() if opener is not None else open_container(url, rtsp_transport, timeout)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"  # no frame threads: they add a frame of latency and contend for the core
        ctx = stream.codec_context
        base = float(stream.time_base) if stream.time_base is not None else 1 / 90000
        live = opener is not None or url.startswith(("rtsp://", "rtsps://", "http://", "https://"))
        pace = (not live) if realtime is None else realtime
        started = clock()
        first_pts: float | None = None
        if on_open is not None:
            on_open()
        for packet in container.demux(stream):
            if stop.is_set():
                return
            if packet.size == 0:  # the demuxer's flush packet at the end
                continue
            stats.packets += 1
            t_stream = (packet.pts if packet.pts is not None else (packet.dts or 0)) * base
            if first_pts is None:
                first_pts = t_stream
            rel = t_stream - first_pts
            key = bool(packet.is_keyframe)
            if key:
                sampler.keyframe(rel)
            if not sampler.decode(key):
                continue
            if pace:
                delay = started + rel - clock()
                if delay > 0 and stop.wait(delay):
                    return
            try:
                frames = ctx.decode(packet)
            except av.FFmpegError as exc:
                stats.decode_errors += 1
                logger.debug("%s: decode error: %s", url, exc)
                continue
            for frame in frames:
                stats.decoded += 1
                if not sampler.take(rel):
                    continue
                w, h = publish_size(frame.width, frame.height, publish_width)
                image = frame.reformat(width=w, height=h, format="bgr24", interpolation="AREA").to_ndarray()
                yield Sample(started + rel if pace else clock(), image, frame.width, frame.height)
    finally:
        container.close()
