"""Camera gateway benchmark: how many 1080p cameras one core serves, against plain decoding.

The streams: OpenCV's real `vtest.avi` footage (simulators/footage.py) scaled to 1920x1080 and encoded as
H.264 at 25 fps with a keyframe every 2 s (50 frames, no B-frames), as a surveillance camera's main stream.

- **Gateway:** a real `CameraGateway` in this process with N cameras on that stream (read as files,
  unpaced, so the CPU is the only limit), each sampled at 1 frame per 2 s (`sample_every: 2s`,
  `keyframes: auto`: only keyframes reach the decoder), scaled to 640 wide, JPEG-encoded and published to
  a real Mosquitto on loopback. CPU: this process's user+system time until every camera has played its
  stream to the end (the broker's own CPU is not counted).
- **Baseline, same run:** plain decoding of the same stream, every frame (what a gateway without
  keyframe sampling, or an NVR's analytics, pays), with the same single-threaded PyAV decoder.

cameras per core = seconds of stream served / CPU seconds. Target: >= 50 cameras per core for the gateway.

- **GB/T 28181, same run:** the access gateway (edge/gb28181) INVITEs `--gb-channels` channels of an emulated
  lower platform (simulators/gb28181.py, a process of its own), which streams the same 1080p stream to it as
  MPEG-PS over RTP (UDP) in real time; the gateway reorders, demuxes (FFmpeg's MPEG-PS), decodes keyframes at
  1 frame per 2 s and publishes. Its CPU over `--gb-window` s once every channel plays: channels per core, and the
  ratio to the RTSP/file path above. Target >= 50 channels per core.
- **GB/T 28181 alarm snapshots, same run:** one alarm, then a burst of `--gb-snapshots` alarms on as many
  channels: the gateway INVITEs each for its first frame (issue 41's evidence); the time from the burst to each
  snapshot and snapshots per second, against one alarm's snapshot time.
- **GB/T 28181 registration:** `--gb-devices` emulated devices (one process, one UDP socket) register with digest
  auth, then each sends a keepalive a minute, for 60 s; the gateway's share of a core. Target < 10%.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402

from edge.camera_gateway.config import CameraGatewayConfig  # noqa: E402
from edge.camera_gateway.gateway import CameraGateway  # noqa: E402
from edge.gb28181.config import GbGatewayConfig  # noqa: E402
from edge.gb28181.evidence import Snapshot  # noqa: E402
from edge.gb28181.gateway import GbGateway  # noqa: E402
from simulators import footage  # noqa: E402
from simulators.gb28181 import make_channels  # noqa: E402
from simulators.services import start_mosquitto, stop_pid  # noqa: E402

FPS, GOP, SIZE = 25, 50, (1920, 1080)
GB_SERVER, GB_DOMAIN, GB_PLATFORM, GB_PASSWORD = ("44030500002000000001", "4403050000", "44030500002160000001",
                                                  "bench-only-gb-password")


def stream_file(seconds: int) -> Path:
    """The 1080p test stream, made once and cached beside the footage."""
    dest = footage.cache_dir() / f"bench-1080p-{FPS}fps-gop{GOP}-{seconds}s.mp4"
    if not dest.is_file():
        src = list(footage.frames(footage.clip(), seconds * 10))  # the clip is 10 fps
        frames = (src[min(len(src) - 1, i * 10 // FPS)] for i in range(seconds * FPS))
        footage.encode(frames, dest, FPS, GOP, SIZE)
    return dest


def plain_decode(path: Path) -> tuple[float, int]:
    """CPU seconds to decode every frame of the stream, and the frames decoded."""
    t0 = time.process_time()
    n = 0
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        st.thread_type = "SLICE"
        for frame in c.decode(st):
            frame.to_ndarray(format="yuv420p")  # as far as the decoder's own buffer: no conversion
            n += 1
    return time.process_time() - t0, n


def gateway(path: Path, cameras: int, broker_port: int) -> tuple[float, int, int]:
    """CPU seconds for `cameras` cameras to serve the stream once, frames published, keyframes decoded."""
    cfg = CameraGatewayConfig.model_validate({
        "mqtt": {"host": "127.0.0.1", "port": broker_port}, "client_id": "bench-camera-gateway",
        "cameras": [{"id": f"cam-{i:03d}", "grid": "grid-01", "url": str(path), "sample_every": "2s",
                     "width": 640, "realtime": False, "offline_after": "1h"} for i in range(cameras)]})
    gw = CameraGateway(cfg)
    t0 = time.process_time()
    gw.start()
    try:
        while not all(r.ended for r in gw.cams.values()):
            time.sleep(0.05)
        cpu = time.process_time() - t0
    finally:
        gw.stop()
    published = sum(r.stats.published for r in gw.cams.values())
    decoded = sum(r.stats.decoded for r in gw.cams.values())
    return cpu, published, decoded


def gb_config(broker_port: int, devices: list[dict], streams: list[dict], per_source: float = 20.0,
              ) -> GbGatewayConfig:
    return GbGatewayConfig.model_validate({
        "sip": {"id": GB_SERVER, "domain": GB_DOMAIN, "host": "127.0.0.1", "port": 0, "transports": ["udp"]},
        "devices": devices, "streams": streams, "registration": {"per_source": per_source},
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "protocol": "v311"}, "client_id": "bench-gb28181"})


def emulator(mode: str, port: int, *args: str) -> subprocess.Popen[str]:
    """The emulated platform or swarm (simulators/gb28181.py) in a process of its own: its CPU is not the
    gateway's."""
    return subprocess.Popen([sys.executable, "-m", "simulators.gb28181", mode, "--server", f"127.0.0.1:{port}",
                             "--server-id", GB_SERVER, "--domain", GB_DOMAIN, *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "GB_EMULATOR_PASSWORD": GB_PASSWORD})


def gb_streams(path: Path, channels: int, broker_port: int, window: float) -> tuple[float, float, int, int, int]:
    """A lower platform's `channels` channels INVITEd by the GB/T 28181 gateway and streamed to it as PS over RTP
    (UDP) in real time; the gateway's CPU over `window` seconds once all are playing. Returns (CPU s, window s,
    frames published, keyframes decoded, RTP packets refused or lost)."""
    chans = make_channels(channels)
    cfg = gb_config(broker_port, [{"id": GB_PLATFORM, "grid": "grid-01", "password": GB_PASSWORD}],
                    [{"channel": c.id, "sample_every": "2s", "width": 640, "offline_after": "1h"} for c in chans])
    gw = GbGateway(cfg)
    gw.start()
    emu = emulator("platform", gw.port, "--channels", str(channels), "--footage", str(path),
                   "--seconds", str(window + 40))
    try:
        deadline = time.monotonic() + 60
        while sum(1 for r in gw.streams.values() if r.state == "playing" and r.stats.published) < channels:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(gw.streams)} of {channels} streams playing")
            time.sleep(0.1)
        time.sleep(1.0)
        t0, w0 = time.process_time(), time.monotonic()
        p0 = sum(r.stats.published for r in gw.streams.values())
        d0 = sum(r.stats.decoded for r in gw.streams.values())
        time.sleep(window)
        cpu, wall = time.process_time() - t0, time.monotonic() - w0
        published = sum(r.stats.published for r in gw.streams.values()) - p0
        decoded = sum(r.stats.decoded for r in gw.streams.values()) - d0
        lost = sum(r.reorder.lost for r in gw.streams.values()) + sum(gw.refused.values())
    finally:
        emu.kill()
        emu.wait()
        gw.stop()
    return cpu, wall, published, decoded, lost


class SnapshotSink:
    """Stands in for the hub's evidence poster: when each snapshot was taken (the gateway's side of a burst)."""

    def __init__(self) -> None:
        self.results: Counter[str] = Counter()
        self.taken: list[tuple[float, str]] = []

    def put(self, snap: Snapshot) -> None:
        self.taken.append((time.time(), snap.channel))
        self.results["taken"] += 1

    def start(self) -> None: ...

    def stop(self) -> None: ...


def gb_snapshots(path: Path, alarms: int, broker_port: int) -> dict[str, float]:
    """A burst of `alarms` intrusion alarms on as many channels of an emulated platform (another process): the
    gateway INVITEs each channel, takes its first frame as a JPEG and hangs up. Returns the time from the burst
    to each snapshot: the first, the last, and snapshots per second."""
    cfg = gb_config(broker_port, [{"id": GB_PLATFORM, "grid": "grid-01", "password": GB_PASSWORD}], [])
    gw = GbGateway(cfg)
    sink = SnapshotSink()
    gw.evidence = sink  # type: ignore[assignment]
    gw.start()
    emu = emulator("platform", gw.port, "--channels", str(alarms), "--footage", str(path), "--seconds", "40",
                   "--alarms", str(alarms))
    try:
        assert emu.stdout is not None
        said = json.loads(emu.stdout.readline())["at"]
        deadline = time.monotonic() + 30
        while len(sink.taken) < alarms and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        emu.kill()
        emu.wait()
        gw.stop()
    after = sorted(t - said for t, _ in sink.taken)
    return {"alarms": alarms, "taken": len(after), "first_s": after[0] if after else float("nan"),
            "last_s": after[-1] if after else float("nan"),
            "per_s": len(after) / after[-1] if after else 0.0, "no_frame": sink.results["no_frame"]}


def gb_swarm(devices: int, broker_port: int, window: float) -> dict[str, float]:
    """`devices` devices registering with one gateway process, then sending a keepalive each per minute: the
    gateway's share of a core while they register and while they keep alive."""
    ids = [f"{GB_DOMAIN[:8]}001320{i:06d}" for i in range(devices)]
    cfg = gb_config(broker_port, [{"id": i, "grid": "grid-01", "password": GB_PASSWORD, "catalog": False}
                                  for i in ids], [], per_source=1e9)  # one address for all: no flood limit here
    gw = GbGateway(cfg)
    gw.start()
    t0, w0 = time.process_time(), time.monotonic()
    emu = emulator("swarm", gw.port, "--ids", str(devices), "--seconds", str(window), "--keepalive", "60")
    try:
        assert emu.stdout is not None
        reg = json.loads(emu.stdout.readline())
        t1, w1 = time.process_time(), time.monotonic()
        done = json.loads(emu.stdout.readline())
        t2, w2 = time.process_time(), time.monotonic()
        online = sum(1 for p in gw.peers.values() if p.presence.state == "online")
    finally:
        emu.kill()
        emu.wait()
        gw.stop()
    return {"devices": devices, "registered": reg["devices"], "online": online,
            "register_s": reg["seconds"], "register_core_share": (t1 - t0) / (w1 - w0),
            "keepalives": done["keepalives"], "keepalive_core_share": (t2 - t1) / (w2 - w1),
            "keepalives_per_s": done["keepalives"] / (w2 - w1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=30, help="length of the stream")
    ap.add_argument("--cameras", type=int, default=40, help="cameras the gateway serves at once")
    ap.add_argument("--gb-channels", type=int, default=40, help="GB/T 28181 channels streamed as PS over RTP")
    ap.add_argument("--gb-devices", type=int, default=10_000, help="GB/T 28181 devices registering (0: skip)")
    ap.add_argument("--gb-snapshots", type=int, default=40, help="alarms in the snapshot burst (0: skip)")
    ap.add_argument("--gb-window", type=float, default=15.0, help="seconds the GB/T 28181 streams are measured "
                                                                   "(the stream must last 15 s longer)")
    args = ap.parse_args()
    path = stream_file(args.seconds)
    base_cpu, base_frames = min((plain_decode(path) for _ in range(2)), key=lambda r: r[0])
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_mosquitto(Path(tmp))
        try:
            gw_cpu, published, decoded = gateway(path, args.cameras, broker.port)
            gb_cpu, gb_wall, gb_published, gb_decoded, gb_lost = gb_streams(
                stream_file(max(args.seconds, int(args.gb_window) + 15)), args.gb_channels, broker.port,
                args.gb_window)
            swarm = gb_swarm(args.gb_devices, broker.port, 60.0) if args.gb_devices else None
            snap_file = stream_file(max(args.seconds, 40))
            one = gb_snapshots(snap_file, 1, broker.port) if args.gb_snapshots else None
            burst = gb_snapshots(snap_file, args.gb_snapshots, broker.port) if args.gb_snapshots else None
        finally:
            stop_pid(broker.proc)
    served = args.cameras * args.seconds
    per_core = served / gw_cpu
    base_per_core = args.seconds / base_cpu
    print(f"stream: 1920x1080 H.264, {FPS} fps, keyframe every {GOP / FPS:.0f} s, {args.seconds} s "
          f"({base_frames} frames); gateway: {args.cameras} cameras, 1 frame per 2 s, 640 wide JPEG to Mosquitto")
    print(f"{'path':<34}{'CPU s':>8}{'stream s':>10}{'cameras/core':>14}{'frames decoded':>16}")
    name = "plain decode (every frame)"
    print(f"{name:<34}{base_cpu:>8.2f}{args.seconds:>10}{base_per_core:>14.1f}{base_frames:>16}")
    print(f"{'gateway (keyframes, publish)':<34}{gw_cpu:>8.2f}{served:>10}{per_core:>14.1f}{decoded:>16}")
    print(f"ratio gateway / plain decode: {per_core / base_per_core:.1f}x; published {published} frames; "
          f"target >= 50 cameras per core: {'met' if per_core >= 50 else 'NOT met'}")
    gb_per_core = args.gb_channels * gb_wall / gb_cpu
    print(f"{'GB/T 28181 (PS over RTP, UDP)':<34}{gb_cpu:>8.2f}{args.gb_channels * gb_wall:>10.0f}{gb_per_core:>14.1f}"
          f"{gb_decoded:>16}")
    print(f"GB/T 28181: {args.gb_channels} channels INVITEd from an emulated platform (another process), real time, "
          f"measured {gb_wall:.0f} s once all played; published {gb_published} frames; RTP lost or refused "
          f"{gb_lost}; ratio to the RTSP/file path {gb_per_core / per_core:.2f}; target >= 50 channels per core: "
          f"{'met' if gb_per_core >= 50 else 'NOT met'}")
    if swarm is not None:
        print(f"GB/T 28181 registration: {swarm['registered']:.0f} of {swarm['devices']:.0f} devices registered in "
              f"{swarm['register_s']:.1f} s ({swarm['register_core_share'] * 100:.1f}% of a core meanwhile); "
              f"keepalives {swarm['keepalives_per_s']:.0f}/s for 60 s: {swarm['keepalive_core_share'] * 100:.1f}% of "
              f"a core, {swarm['online']:.0f} online; target < 10%: "
              f"{'met' if swarm['keepalive_core_share'] < 0.10 else 'NOT met'}")
    if one is not None and burst is not None:
        print(f"GB/T 28181 alarm snapshots: one alarm's snapshot {one['first_s']:.2f} s after it; a burst of "
              f"{burst['alarms']:.0f} alarms: {burst['taken']:.0f} snapshots, the first after "
              f"{burst['first_s']:.2f} s, "
              f"the last after {burst['last_s']:.2f} s: {burst['per_s']:.1f} snapshots/s (one at a time would be "
              f"{1 / one['first_s']:.1f}/s: ratio {burst['per_s'] * one['first_s']:.1f}); no frame: "
              f"{burst['no_frame']:.0f}")
    print(json.dumps({"bench": "gateway", "cameras_per_core": round(per_core, 1),
                      "gb28181_channels_per_core": round(gb_per_core, 1),
                      "gb28181_ratio_to_rtsp": round(gb_per_core / per_core, 2),
                      "gb28181_keepalive_core_share": round(swarm["keepalive_core_share"], 4) if swarm else None,
                      "gb28181_register_core_share": round(swarm["register_core_share"], 4) if swarm else None,
                      "gb28181_registered": swarm["registered"] if swarm else None,
                      "gb28181_snapshots_per_s": round(burst["per_s"], 2) if burst else None,
                      "gb28181_snapshot_s": round(one["first_s"], 2) if one else None,
                      "gb28181_snapshot_burst_last_s": round(burst["last_s"], 2) if burst else None,
                      "plain_decode_cameras_per_core": round(base_per_core, 1),
                      "ratio": round(per_core / base_per_core, 2), "cameras": args.cameras,
                      "stream_seconds": args.seconds, "published": published, "decoded": decoded,
                      "gateway_cpu_s": round(gw_cpu, 2), "plain_decode_cpu_s": round(base_cpu, 2)}))


if __name__ == "__main__":
    np.seterr(all="ignore")
    threading.excepthook = lambda a: print(f"thread {a.thread}: {a.exc_value}", file=sys.stderr)
    main()
