"""Video benchmark, one process, one core: the full edge pipeline on camera frames (decode and validate,
scene model, 3 rules per camera, evidence when something fires) at 640x360 and 1280x720 JPEG, against the
bare `cv2.imdecode` colour decode of the same frames in the same run (the ceiling); and thermal frames at
160x120 (decode, hotspot with pre-alarm, zone statistic). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from edge.message import Message  # noqa: E402
from edge.rules.engine import Engine  # noqa: E402
from edge.rules.loader import load_rules  # noqa: E402
from edge.rules.ruleset import RuleSet  # noqa: E402
from edge.sensors import decode  # noqa: E402
from edge.sensors.common import Limits  # noqa: E402
from edge.video.pipeline import Video  # noqa: E402
from simulators.scenes import CameraSim, HotSpot, ThermalSim, View, Walker  # noqa: E402

RULES = """
rules:
  - id: yard
    match: {kind: camera}
    when: {motion_in_zone: {zone: [[0.0, 0.55], [0.45, 0.55], [0.45, 1.0], [0.0, 1.0]], min_area: 0.02}}
    category: intrusion
  - id: gate
    match: {kind: camera}
    when: {motion_in_zone: {zone: [[0.6, 0.3], [0.9, 0.3], [0.9, 0.9], [0.6, 0.9]], min_area: 0.05,
           ignore: [[[0.7, 0.3], [0.8, 0.3], [0.8, 0.5]]]}}
    category: intrusion
  - id: lens
    match: {kind: camera}
    when: {tamper: {for: 20s}}
    category: tamper
  - id: roof
    match: {kind: thermal}
    when: {hotspot: {above_c: 80, warn_c: 50, min_pixels: 5, for_frames: 3}}
    category: fire
  - id: panel
    match: {kind: thermal}
    when: {zone_stat: {stat: max, above: 70, zone: [[0, 0], [0.5, 0], [0.5, 0.5], [0, 0.5]]}}
    category: overheat
"""


def camera_frames(w: int, h: int, n: int) -> list[bytes]:
    cam = CameraSim(5, w, h)
    walkers = [Walker(((0.95, 0.8), (0.05, 0.85)), start=0.0, speed=0.1)]
    return [cam.jpeg(i / 5, View(walkers=walkers, noise=2.0), quality=80) for i in range(n)]


def thermal_frames(n: int) -> list[bytes]:
    sim = ThermalSim(seed=4)
    spot = HotSpot(0.7, 0.6, start=0.0, rate=3.0, peak=120.0)
    return [sim.png(i / 5, [spot]) for i in range(n)]


def bare(frames: list[bytes], seconds: float) -> float:
    arrays = [np.frombuffer(f, np.uint8) for f in frames]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for a in arrays:
            cv2.imdecode(a, cv2.IMREAD_COLOR if a[0] == 0xFF else cv2.IMREAD_UNCHANGED)
        n += len(arrays)
    return n / (time.perf_counter() - t0)


def pipeline(frames: list[bytes], kind: str, cameras: int, seconds: float, rules: RuleSet) -> tuple[float, int]:
    """Frames/s through decode → scene → rules → evidence, frames spread over `cameras` devices."""
    video, limits = Video(), Limits()
    engine = Engine(rules, "bench", evidence=video.evidence)
    props_ts = time.time()
    n, alerts, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for i, f in enumerate(frames):
            ts = props_ts + n / 5.0 / cameras
            msg = Message(f"gw/grid-01/{kind}/dev-{i % cameras}/frame", f, ts, {"ts": str(int(ts * 1000))})
            ev = decode(msg, "gw", limits)
            out = video.observe(engine, ev)
            alerts += len(out)
            n += 1
    return n / (time.perf_counter() - t0), alerts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    ap.add_argument("--cameras", type=int, default=20)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "rules.yaml"
        p.write_text(RULES)
        rules = RuleSet(load_rules(p))
    rows, out = [], {"bench": "video"}
    for label, w, h, target in (("640x360", 640, 360, 400), ("1280x720", 1280, 720, 150)):
        frames = camera_frames(w, h, 100)
        ceiling = bare(frames, args.seconds)
        fps, alerts = pipeline(frames, "camera", args.cameras, args.seconds, rules)
        rows.append((f"camera {label}", fps, ceiling, target, alerts))
        out[f"fps_{label}"] = round(fps)
        out[f"bare_decode_fps_{label}"] = round(ceiling)
        out[f"ratio_{label}"] = round(fps / ceiling, 2)
    frames = thermal_frames(100)
    ceiling = bare(frames, args.seconds)
    fps, alerts = pipeline(frames, "thermal", args.cameras, args.seconds, rules)
    rows.append(("thermal 160x120", fps, ceiling, 1500, alerts))
    out.update(fps_thermal=round(fps), bare_decode_fps_thermal=round(ceiling), ratio_thermal=round(fps / ceiling, 2))
    print(f"{'input':<18}{'pipeline fps':>14}{'bare decode fps':>17}{'ratio':>8}{'target fps':>12}{'alerts':>8}")
    for name, fps, ceiling, target, alerts in rows:
        print(f"{name:<18}{fps:>14.0f}{ceiling:>17.0f}{fps / ceiling:>8.2f}{target:>12}{alerts:>8}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
