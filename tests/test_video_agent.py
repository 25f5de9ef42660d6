"""Video through real Mosquitto to a running agent: synthetic scenes in real time raise each expected alert
once with its snapshot and nothing for the distractors; every bad frame class is counted and the next good
frame is processed; a camera's backlog is dropped, newest frame first; reloads keep the scene models."""

from __future__ import annotations

import base64
import threading
import time

import cv2
import numpy as np
import pytest

from edge.agent import Agent
from simulators.scenes import CameraSim, HotSpot, ThermalSim, View, Walker, encode_thermal, timeline
from simulators.services import start_mosquitto, stop_pid
from tests.agentkit import Gateway, agent_config, wait_until
from tests.recording_hub import RecordingHub

pytestmark = pytest.mark.slow

YARD = [[0.0, 0.55], [0.45, 0.55], [0.45, 1.0], [0.0, 1.0]]
RULES = f"""
rules:
  - id: yard-intrusion
    match: {{kind: camera}}
    when: {{motion_in_zone: {{zone: {YARD}, min_area: 0.02, min_frames: 3, clear_after: 1s}}}}
    severity: major
    category: intrusion
  - id: lens
    match: {{kind: camera}}
    when: {{tamper: {{for: 1s}}}}
    severity: minor
    category: tamper
  - id: roof-fire
    match: {{kind: thermal}}
    when: {{hotspot: {{above_c: 80, warn_c: 50, min_pixels: 5, for_frames: 3}}}}
    severity: critical
    category: fire
"""
FPS = 10.0
INTO_YARD = Walker(((0.9, 0.75), (0.2, 0.8)), start=1.2, speed=0.6)
OUTSIDE = Walker(((0.95, 0.45), (0.5, 0.45)), start=1.2, speed=0.6)
CAM07 = [(0, 1.2, View()), (1.2, 3.5, View(walkers=[INTO_YARD])), (3.5, 4.5, View()),
         (4.5, 6.5, View(covered=True)), (6.5, 7.5, View()), (7.5, 9.5, View(blur=True)), (9.5, 10.5, View()),
         (10.5, 12.5, View(turned=True)), (12.5, 13.5, View())]
CAM08 = [(0, 1.2, View()), (1.2, 3.5, View(walkers=[OUTSIDE])), (3.5, 5.5, View(light=1.5)),
         (5.5, 8.0, View(rain=0.02)), (8.0, 10.5, View(noise=9.0)), (10.5, 13.5, View(light=1.0))]
SPOT = HotSpot(0.6, 0.4, start=3.0, rate=15.0, peak=150.0, radius=0.08)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A broker of this module's own: frames are large, and the persistent sessions that other modules'
    agents leave behind on the shared broker would each queue a copy of every frame."""
    b = start_mosquitto(tmp_path_factory.mktemp("mosquitto-video"))
    yield b
    stop_pid(b.proc)


@pytest.fixture
def hub():
    h = RecordingHub().start()
    yield h
    h.stop()


def test_scenes_in_real_time_raise_each_expected_alert_once_with_its_snapshot(tmp_path, broker, hub):
    agent = Agent(agent_config(tmp_path, broker, hub.url, RULES))
    agent.start()
    assert agent.mqtt.wait_connected(10)
    gw = Gateway(broker)
    cam7, cam8, th = CameraSim(7), CameraSim(8), ThermalSim(seed=2)
    frames7, frames8 = timeline(CAM07, FPS), timeline(CAM08, FPS)
    try:
        t0 = time.time() + 0.5
        for i, ((t, v7), (_, v8)) in enumerate(zip(frames7, frames8, strict=True)):
            time.sleep(max(0.0, t0 + t - time.time()))
            gw.frame("gw/grid-07/camera/cam-07/frame", cam7.jpeg(t, v7), t0 + t, seq=i, wait=False)
            gw.frame("gw/grid-07/camera/cam-08/frame", cam8.jpeg(t, v8), t0 + t, seq=i, envelope=True, wait=False)
            if i % 2 == 0:
                gw.frame("gw/grid-07/thermal/th-01/frame", th.png(t, [SPOT]), t0 + t, seq=i,
                         content_type="image/png", wait=False)
        expected = {("yard-intrusion", "cam-07"): 1, ("lens", "cam-07"): 3, ("roof-fire:warn", "th-01"): 1,
                    ("roof-fire", "th-01"): 1}

        def fired() -> dict[tuple[str, str], int]:
            out: dict[tuple[str, str], int] = {}
            for a in list(hub.unique.values()):
                if a["state"] == "firing":
                    out[(a["rule_id"], a["device_id"])] = out.get((a["rule_id"], a["device_id"]), 0) + 1
            return out

        assert wait_until(lambda: fired() == expected, 20), fired()
        time.sleep(1.0)
        assert fired() == expected  # and nothing more came: cam-08's distractors raised nothing
        alerts = [a for a in hub.unique.values() if a["state"] == "firing"]
        assert sorted(a["labels"]["tamper"] for a in alerts if a["rule_id"] == "lens") == \
            ["blackout", "defocus", "shifted"]
        for a in alerts:
            img = cv2.imdecode(np.frombuffer(base64.b64decode(a["evidence"]["snapshot_jpeg_b64"]),
                                             np.uint8), cv2.IMREAD_COLOR)
            assert img is not None and img.shape[0] > 100, a["rule_id"]
        assert agent.metrics.value("gridwatch_edge_messages_total", kind="camera") == 2 * len(frames7) - \
            agent.metrics.value("gridwatch_edge_frames_dropped_total")
        assert hub.duplicates() == {}
        assert agent.metrics.value("gridwatch_edge_frame_seconds_count", kind="thermal") > 0
    finally:
        gw.close()
        agent.stop()


def good_jpeg(w: int = 640, h: int = 360) -> bytes:
    return CameraSim(1, w, h).jpeg(0.0)


def _png(arr: np.ndarray) -> bytes:
    return cv2.imencode(".png", arr)[1].tobytes()


def four_component_jpeg(jpeg: bytes) -> bytes:
    """The same JPEG with its frame header claiming 4 components (as a CMYK export would)."""
    i = jpeg.index(b"\xff\xc0")
    return jpeg[:i + 9] + bytes([4]) + jpeg[i + 10:]


JPEG = good_jpeg()
BAD_FRAMES = [
    ("corrupt_image", "camera", JPEG[:600] + bytes(range(256)) * 8 + JPEG[-2:], "image/jpeg", True),
    ("truncated_image", "camera", JPEG[: len(JPEG) // 2], "image/jpeg", True),
    ("bad_channels", "camera", four_component_jpeg(JPEG), "image/jpeg", True),
    ("bad_depth", "thermal", _png(np.zeros((120, 160), np.uint8)), "image/png", True),
    ("bad_channels", "thermal", _png(np.zeros((120, 160, 3), np.uint16)), "image/png", True),
    ("truncated_image", "thermal", encode_thermal(np.full((120, 160), 20.0, np.float32))[:-30], "image/png", True),
    ("oversize", "camera", good_jpeg(1920, 1080), "image/jpeg", True),  # over the pixel limit set below
    ("oversize", "camera", JPEG + b"\x00" * 300_000, "image/jpeg", True),  # over the byte limit set below
    ("missing_field", "camera", JPEG, "image/jpeg", False),  # no ts at all
    ("bad_image", "thermal", b"GIF89a" + bytes(100), "image/png", True),
]
BAD_RULES = """
rules:
  - id: any-motion
    match: {kind: camera}
    when: {motion_in_zone: {min_area: 0.5, min_frames: 1}}
    category: intrusion
  - id: hot
    match: {kind: thermal}
    when: {zone_stat: {stat: max, above: 1000}}
    category: fire
"""


@pytest.fixture(scope="module")
def bad_agent(tmp_path_factory, broker):
    h = RecordingHub().start()
    cfg = agent_config(tmp_path_factory.mktemp("bad-frames"), broker, h.url, BAD_RULES,
                       limits={"max_frame_bytes": 200_000, "max_frame_pixels": 1280 * 720})
    agent = Agent(cfg)
    agent.start()
    assert agent.mqtt.wait_connected(10)
    gw = Gateway(broker)
    yield agent, gw
    gw.close()
    agent.stop()
    h.stop()


@pytest.mark.parametrize(("reason", "kind", "data", "ctype", "with_ts"), BAD_FRAMES,
                         ids=[f"{b[0]}-{b[1]}-{i}" for i, b in enumerate(BAD_FRAMES)])
def test_bad_frame_is_counted_and_the_next_good_frame_is_processed(bad_agent, reason, kind, data, ctype, with_ts):
    agent, gw = bad_agent
    m = agent.metrics
    device = "cam-bad" if kind == "camera" else "th-bad"
    topic = f"gw/grid-01/{kind}/{device}/frame"
    before = m.value("gridwatch_edge_rejected_total", reason=reason)
    good_before = m.value("gridwatch_edge_messages_total", kind=kind)
    gw.frame(topic, data, time.time() if with_ts else None, content_type=ctype)
    assert wait_until(lambda: m.value("gridwatch_edge_rejected_total", reason=reason) == before + 1, 10)
    good = JPEG if kind == "camera" else encode_thermal(np.full((120, 160), 25.0, np.float32))
    gw.frame(topic, good, time.time(), content_type=ctype)
    assert wait_until(lambda: m.value("gridwatch_edge_messages_total", kind=kind) == good_before + 1, 10)


def test_a_busy_worker_keeps_only_the_newest_frame_per_camera(tmp_path, broker, hub):
    agent = Agent(agent_config(tmp_path, broker, hub.url, BAD_RULES))
    agent.start()
    assert agent.mqtt.wait_connected(10)
    gw = Gateway(broker)
    cam = CameraSim(3)
    frames = [cam.jpeg(i / 10) for i in range(5)]
    try:
        gw.frame("gw/grid-01/camera/cam-01/frame", frames[0], time.time(), seq=0)
        m = agent.metrics
        assert wait_until(lambda: m.value("gridwatch_edge_messages_total", kind="camera") == 1, 10)
        original = agent.engine.observe
        gate = threading.Event()

        def slow(ev):  # the worker stalls on the next camera frame, as under overload
            gate.wait(10)
            return original(ev)

        agent.engine.observe = slow  # type: ignore[method-assign]
        for i in range(1, 60):
            gw.frame("gw/grid-01/camera/cam-01/frame", frames[i % 5], time.time(), seq=i)
        assert wait_until(lambda: m.value("gridwatch_edge_frames_dropped_total") >= 55, 10)
        assert len(agent.inbox.frames) <= 1 and agent.inbox.queue.qsize() <= 1  # no backlog: one slot per camera
        gate.set()
        agent.engine.observe = original  # type: ignore[method-assign]
        total = lambda: (m.value("gridwatch_edge_messages_total", kind="camera")  # noqa: E731
                         + m.value("gridwatch_edge_frames_dropped_total"))
        assert wait_until(lambda: total() == 60, 10), total()
        assert agent.engine.states["any-motion|cam-01|"]["lseq"] == 59  # the newest frame was the one kept
    finally:
        gw.close()
        agent.stop()


def test_rule_reload_keeps_the_scene_models_of_cameras(tmp_path, broker, hub):
    cfg = agent_config(tmp_path, broker, hub.url, BAD_RULES)
    agent = Agent(cfg)
    agent.start()
    assert agent.mqtt.wait_connected(10)
    gw = Gateway(broker)
    try:
        for i in range(5):
            gw.frame("gw/grid-01/camera/cam-01/frame", JPEG, time.time(), seq=i)
        m = agent.metrics
        assert wait_until(lambda: m.value("gridwatch_edge_messages_total", kind="camera")
                          + m.value("gridwatch_edge_frames_dropped_total") == 5, 10), \
            (m.value("gridwatch_edge_messages_total", kind="camera"), m.value("gridwatch_edge_frames_dropped_total"),
             [(s.labels, s.value) for f in m.registry.collect() for s in f.samples if "rejected" in s.name])
        model = agent.video.scenes.cameras["cam-01"]
        seen = model.frames
        (tmp_path / "rules.yaml").write_text(BAD_RULES.replace("min_area: 0.5", "min_area: 0.4"))
        assert wait_until(lambda: agent.metrics.value("gridwatch_edge_rule_reloads_total", result="ok") == 1, 10)
        gw.frame("gw/grid-01/camera/cam-01/frame", JPEG, time.time(), seq=9)
        assert wait_until(lambda: model.frames == seen + 1, 10)
        assert agent.video.scenes.cameras["cam-01"] is model
    finally:
        gw.close()
        agent.stop()
