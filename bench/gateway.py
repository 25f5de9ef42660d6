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
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402

from edge.camera_gateway.config import CameraGatewayConfig  # noqa: E402
from edge.camera_gateway.gateway import CameraGateway  # noqa: E402
from simulators import footage  # noqa: E402
from simulators.services import start_mosquitto, stop_pid  # noqa: E402

FPS, GOP, SIZE = 25, 50, (1920, 1080)


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=30, help="length of the stream")
    ap.add_argument("--cameras", type=int, default=40, help="cameras the gateway serves at once")
    args = ap.parse_args()
    path = stream_file(args.seconds)
    base_cpu, base_frames = min((plain_decode(path) for _ in range(2)), key=lambda r: r[0])
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_mosquitto(Path(tmp))
        try:
            gw_cpu, published, decoded = gateway(path, args.cameras, broker.port)
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
    print(json.dumps({"bench": "gateway", "cameras_per_core": round(per_core, 1),
                      "plain_decode_cameras_per_core": round(base_per_core, 1),
                      "ratio": round(per_core / base_per_core, 2), "cameras": args.cameras,
                      "stream_seconds": args.seconds, "published": published, "decoded": decoded,
                      "gateway_cpu_s": round(gw_cpu, 2), "plain_decode_cpu_s": round(base_cpu, 2)}))


if __name__ == "__main__":
    np.seterr(all="ignore")
    threading.excepthook = lambda a: print(f"thread {a.thread}: {a.exc_value}", file=sys.stderr)
    main()
