"""One INVITEd channel's stream: RTP in (checked, reordered), MPEG-PS bytes through a pipe to PyAV, sampled
frames out.

The RTP side runs on the gateway's asyncio loop (`take` per packet); the decoding runs in a thread of its own
(`run`), reading the pipe through FFmpeg's MPEG-PS demuxer (`format="mpeg"`, which reads the PSM's stream
type 0x1B as H.264, or probes the elementary stream when a device sends no PSM) and the same `read_stream`
and `Sampler` as the RTSP path: only keyframes are decoded when they come at least as often as the sampling
interval. A packet from another address than the device's, or with another SSRC than the `y=` the INVITE
gave, is refused and counted; the stream goes on.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av

from edge.frames.liveness import Liveness
from edge.frames.stream import Sample, Sampler, StreamStats, read_stream
from gridwatch.core.gb28181.rtp import Reorder, RtpError, parse

logger = logging.getLogger(__name__)
READ_CHUNK = 32_768
GATHER = 0.1
"""Seconds a read waits for a full chunk once some bytes are in."""
PIPE_LIMIT = 8 << 20
"""Bytes of PS waiting for the decoder before the oldest are dropped (a decoder that fell behind)."""


class Pipe:
    """Bytes from the RTP side to the decoder: `read` blocks until there are some, or returns b'' once closed."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.closed = False
        self.dropped = 0

    def write(self, data: bytes) -> None:
        with self.cond:
            self.buf += data
            if len(self.buf) > PIPE_LIMIT:
                cut = len(self.buf) - PIPE_LIMIT
                del self.buf[:cut]
                self.dropped += cut
            if len(self.buf) >= READ_CHUNK:  # what the reader waits for (or its short deadline)
                self.cond.notify()

    def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes. FFmpeg asks for its whole buffer (32 KiB) each time: waiting until that much is in
        (at most `GATHER` s) answers it in one call instead of one per RTP packet (a tenth of the calls and of the
        thread switches; 32 KiB of a 1080p stream come within a tenth of a second)."""
        with self.cond:
            deadline = None
            want = min(n, READ_CHUNK) if n > 0 else 1
            while len(self.buf) < want and not self.closed:
                if self.buf:
                    now = time.monotonic()
                    deadline = deadline or now + GATHER
                    if now >= deadline:
                        break
                    self.cond.wait(deadline - now)
                else:
                    self.cond.wait(0.5)
            take = len(self.buf) if n < 0 else min(n, len(self.buf))
            out = bytes(self.buf[:take])
            del self.buf[:take]
            return out

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


@dataclass
class StreamRun:
    """What the gateway knows of one channel's stream."""

    channel: str
    grid: str
    device: str  # the device or platform that serves it
    ssrc: str
    sample_every: float
    width: int
    jpeg_quality: int
    liveness: Liveness
    source_host: str = ""
    call_id: str = ""
    state: str = "idle"  # idle, inviting, playing, ended
    asked_at: float = 0.0
    reorder: Reorder = field(default_factory=Reorder)
    pipe: Pipe = field(default_factory=Pipe)
    stats: StreamStats = field(default_factory=StreamStats)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    transport: Any = None  # the asyncio RTP endpoint
    rtp_port: int = 0
    seq: int = 0
    invite: Any = None  # the INVITE sent (for ACK and BYE)
    answer: Any = None  # the 200 it got
    snapshot: str | None = None  # a snapshot for an alarm (its description): the first frame, then BYE
    alarm_at: float = 0.0
    look: int | None = None  # a snapshot for a 视频复核 look (the hub's id of it)
    clip: tuple[float, float] | None = None  # a recording downloaded (§9.9): its start and end, Unix seconds

    def record(self, done: Callable[[StreamRun, bytes | None], None]) -> None:
        """The clip's thread: the downloaded PS remuxed into MP4 as it comes (PyAV: FFmpeg's MPEG-PS demuxer, its
        mp4 muxer; the H.264 packets copied, not decoded), handed to `done` once the pipe closes (None: no
        video came)."""
        out: Any = None
        buf = io.BytesIO()
        packets = 0
        try:
            with av.open(self.pipe, mode="r", format="mpeg",
                         options={"probesize": "262144", "analyzeduration": "2000000"}) as inp:
                video = inp.streams.video[0]
                out = av.open(buf, mode="w", format="mp4")  # moov at the end: the whole file is sent at once
                stream = out.add_stream_from_template(video)
                for pkt in inp.demux(video):
                    if pkt.dts is None or pkt.size == 0:
                        continue
                    pkt.stream = stream
                    out.mux(pkt)
                    packets += 1
                    self.stats.packets += 1
        except (av.FFmpegError, OSError, IndexError) as exc:  # IndexError: no video stream in what came
            self.stats.decode_errors += 1
            logger.warning("gb28181: channel %s recording: %s", self.channel, exc)
        finally:
            if out is not None:
                try:
                    out.close()
                except (av.FFmpegError, OSError) as exc:
                    logger.warning("gb28181: channel %s recording not written: %s", self.channel, exc)
                    packets = 0
        done(self, buf.getvalue() if packets else None)  # it ends the call (BYE)

    def take(self, data: bytes, host: str, refuse: Callable[[str, str], None]) -> None:
        """One RTP packet from the network."""
        if host != self.source_host:
            refuse("rtp_wrong_source", f"channel {self.channel}: RTP from {host}, the device is {self.source_host}")
            return
        try:
            p = parse(data)
        except RtpError as exc:
            refuse(exc.reason, f"channel {self.channel}: {exc}")
            return
        if self.ssrc and p.ssrc != int(self.ssrc):
            refuse("rtp_wrong_ssrc", f"channel {self.channel}: SSRC {p.ssrc}, the INVITE gave {int(self.ssrc)}")
            return
        for payload in self.reorder.push(p.seq, p.payload):
            self.pipe.write(payload)

    def run(self, publish: Callable[[StreamRun, Sample], None]) -> None:
        """The decoding thread: samples until the pipe closes or `stop` is set."""
        def opener() -> av.container.InputContainer:
            return av.open(self.pipe, mode="r", format="mpeg",
                           options={"probesize": "262144", "analyzeduration": "2000000"})
        try:
            for sample in read_stream(f"gb28181:{self.channel}", Sampler(self.sample_every), self.width, self.stop,
                                      self.stats, opener=opener):
                publish(self, sample)
        except (av.FFmpegError, OSError, IndexError) as exc:  # IndexError: no video stream in what came
            self.stats.decode_errors += 1
            logger.warning("gb28181: channel %s stream ended: %s", self.channel, exc)
        finally:
            self.state = "ended"
