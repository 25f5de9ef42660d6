"""Video rules on synthetic scenes, replayed as captures (the backtest path): motion in a zone and its
distractors, tamper kinds, thermal hot spots with pre-alarm, hysteresis and rate, zone statistics."""

from __future__ import annotations

import base64
from datetime import datetime

import cv2
import numpy as np
import pytest

from edge.errors import ConfigError
from edge.rules.loader import load_rules
from simulators.scenes import CameraSim, HotSpot, ThermalSim, View, Walker, timeline
from tests.videokit import firing, frame_line, run_capture

YARD = [[0.0, 0.55], [0.45, 0.55], [0.45, 1.0], [0.0, 1.0]]  # lower-left quarter
RULES = f"""
rules:
  - id: yard-intrusion
    match: {{kind: camera}}
    when: {{motion_in_zone: {{zone: {YARD}, min_area: 0.02, min_frames: 3, clear_after: 3s}}}}
    severity: major
    category: intrusion
  - id: lens
    match: {{kind: camera}}
    when: {{tamper: {{for: 2s}}}}
    severity: minor
    category: tamper
"""
INTO_YARD = Walker(((0.9, 0.75), (0.2, 0.8)), start=2.0, speed=0.3)  # walks from the right into the yard
OUTSIDE = Walker(((0.95, 0.45), (0.5, 0.45)), start=2.0, speed=0.3)  # stays above/right of the yard


def camera_lines(segments, fps: float = 5.0, device: str = "cam-07", seed: int = 7) -> list[dict]:
    cam = CameraSim(seed)
    return [frame_line("camera", device, t, cam.jpeg(t, v)) for t, v in timeline(segments, fps)]


def decoded(alert: dict) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(base64.b64decode(alert.evidence.snapshot_jpeg_b64), np.uint8),
                       cv2.IMREAD_COLOR)
    assert img is not None
    return img


def test_figure_walking_into_the_zone_fires_once_with_an_annotated_snapshot(tmp_path):
    res = run_capture(tmp_path, RULES, camera_lines([(0, 2, View()), (2, 7, View(walkers=[INTO_YARD])),
                                                      (7, 12, View())]))
    fired = firing(res)
    assert [a.rule_id for a in fired] == ["yard-intrusion"]
    a = fired[0]
    assert a.category == "intrusion" and a.device_id == "cam-07" and a.kind == "camera"
    img = decoded(a)
    assert img.shape[1] == 640
    amber = (img[:, :, 2] > 200) & (img[:, :, 1] > 150) & (img[:, :, 0] < 80)  # the zone outline is drawn
    red = (img[:, :, 2] > 200) & (img[:, :, 1] < 60) & (img[:, :, 0] < 60)  # the moving region's box
    assert amber.sum() > 200 and red.sum() > 50
    assert [x.state for x in res.alerts if x.rule_id == "yard-intrusion"] == ["firing", "resolved"]


@pytest.mark.parametrize("view", [
    View(walkers=[OUTSIDE]),
    View(light=1.5), View(light=0.45), View(noise=9.0), View(rain=0.02),
], ids=["walking-outside-the-zone", "lights-on", "dusk", "sensor-noise", "rain"])
def test_distractors_raise_nothing(tmp_path, view):
    res = run_capture(tmp_path, RULES, camera_lines([(0, 2, View()), (2, 9, view), (9, 10, View())]))
    assert firing(res) == []


@pytest.mark.parametrize(("view", "kind"), [
    (View(covered=True), "blackout"), (View(blur=True), "defocus"), (View(turned=True), "shifted")])
def test_tamper_fires_after_its_hold_and_clears_when_the_view_returns(tmp_path, view, kind):
    res = run_capture(tmp_path, RULES, camera_lines([(0, 3, View()), (3, 8, view), (8, 11, View())]))
    lens = [a for a in res.alerts if a.rule_id == "lens"]
    assert [a.state for a in lens] == ["firing", "resolved"]
    assert lens[0].labels["tamper"] == kind
    assert 5.0 <= _t(lens[0].observed_at) - _t(lens[0].started_at) + 3.0 <= 5.6  # held 2 s from t=3
    assert firing(res, "yard-intrusion") == []  # a tampered view is never an intrusion
    assert lens[0].evidence.snapshot_jpeg_b64 is not None


def test_a_short_cover_under_the_hold_time_raises_nothing(tmp_path):
    res = run_capture(tmp_path, RULES, camera_lines([(0, 3, View()), (3, 4, View(covered=True)), (4, 8, View())]))
    assert firing(res) == []


def _t(stamp: datetime | None) -> float:
    from tests.rulekit import T0

    assert stamp is not None
    return stamp.timestamp() - T0


THERMAL = """
rules:
  - id: roof-fire
    match: {kind: thermal}
    when: {hotspot: {above_c: 80, warn_c: 50, clear_below_c: 60, min_pixels: 5, for_frames: 3,
                     zone: [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]}}
    severity: critical
    category: fire
  - id: panel-mean
    match: {kind: thermal}
    when: {zone_stat: {stat: mean, above: 40, clear_below: 35, zone: [[0.0, 0.0], [0.3, 0.0], [0.3, 0.3], [0.0, 0.3]]}}
    severity: major
    category: overheat
"""


def thermal_lines(spots, until: float, fps: float = 4.0, device: str = "th-01") -> list[dict]:
    sim = ThermalSim(seed=3)
    n = round(until * fps)
    return [frame_line("thermal", device, i / fps, sim.png(i / fps, spots)) for i in range(n)]


def test_growing_hot_spot_warns_first_then_alarms_then_clears_with_hysteresis(tmp_path):
    spot = HotSpot(0.75, 0.5, start=1.0, rate=10.0, peak=120.0, radius=0.08)
    lines = thermal_lines([spot], until=14.0)
    cooling = ThermalSim(seed=4)  # then the fire is out: ambient only
    lines += [frame_line("thermal", "th-01", 14 + i / 4, cooling.png(14 + i / 4)) for i in range(8)]
    res = run_capture(tmp_path, THERMAL, lines)
    fired = firing(res)
    assert [a.rule_id for a in fired] == ["roof-fire:warn", "roof-fire"]
    assert fired[0].severity == "major" and fired[1].severity == "critical"
    assert fired[0].labels["level"] == "warning"
    assert 80 < fired[1].value < 130
    assert {a.rule_id for a in res.alerts if a.state == "resolved"} == {"roof-fire:warn", "roof-fire"}
    assert fired[1].evidence.snapshot_jpeg_b64 is not None


def test_hot_spot_outside_the_zone_or_too_small_raises_nothing(tmp_path):
    outside = HotSpot(0.2, 0.8, start=0.0, rate=50.0, peak=200.0, radius=0.08)
    tiny = HotSpot(0.8, 0.5, start=0.0, rate=50.0, peak=200.0, radius=0.005)
    res = run_capture(tmp_path, THERMAL, thermal_lines([outside, tiny], until=6.0))
    assert [a for a in firing(res) if a.rule_id.startswith("roof-fire")] == []


def test_hysteresis_keeps_the_alarm_while_between_levels(tmp_path):
    rules = """
    rules:
      - id: hot
        when: {hotspot: {above_c: 80, clear_below_c: 60, min_pixels: 3}}
        category: fire
    """
    sim = ThermalSim(seed=5)
    lines = [frame_line("thermal", "th-02", t, sim.png(t, [HotSpot(0.5, 0.5, -1.0, 1000.0, peak, 0.1)]))
             for t, peak in [(0, 100.0), (1, 70.0), (2, 70.0), (3, 50.0)]]
    res = run_capture(tmp_path, rules, lines)
    assert [(a.state, round(_t(a.observed_at))) for a in res.alerts] == [("firing", 0), ("resolved", 3)]


def test_rise_rate_fires_before_the_level_is_reached(tmp_path):
    rules = """
    rules:
      - id: heating
        when: {hotspot: {above_c: 200, rise_c: 30, per: 60s}}
        category: fire
    """
    spot = HotSpot(0.5, 0.5, start=0.0, rate=1.5, peak=190.0, radius=0.1)  # 90 °C per minute
    res = run_capture(tmp_path, rules, thermal_lines([spot], until=60.0, fps=1.0))
    fired = firing(res)
    assert len(fired) == 1 and fired[0].labels["trigger"] == "rise"
    assert fired[0].value < 200


def test_zone_mean_statistic(tmp_path):
    warm = HotSpot(0.15, 0.15, start=0.0, rate=100.0, peak=60.0, radius=0.4)
    res = run_capture(tmp_path, THERMAL, thermal_lines([warm], until=2.0))
    fired = firing(res, "panel-mean")
    assert len(fired) == 1 and fired[0].value > 40


@pytest.mark.parametrize(("when", "path", "reason"), [
    ("{motion_in_zone: {zone: [[0, 0], [1.2, 0], [1, 1]]}}", "rules[0].when.motion_in_zone.zone[1][0]",
     "less than or equal to 1"),
    ("{motion_in_zone: {zone: [[0, 0], [1, 1], [1, 0], [0, 1]]}}", "rules[0].when.motion_in_zone.zone",
     "cross"),
    ("{motion_in_zone: {min_area: 0}}", "rules[0].when.motion_in_zone.min_area", "greater than 0"),
    ("{motion_in_zone: {min_frames: 0}}", "rules[0].when.motion_in_zone.min_frames", "greater than or equal to 1"),
    ("{hotspot: {above_c: 80, min_pixels: 0}}", "rules[0].when.hotspot.min_pixels", "greater than or equal to 1"),
    ("{hotspot: {above_c: 80, warn_c: 90}}", "rules[0].when.hotspot", "warn_c"),
    ("{tamper: {kinds: [smoke]}}", "rules[0].when.tamper.kinds[0]", "blackout"),
])
def test_bad_camera_rules_name_file_path_and_reason(tmp_path, when, path, reason):
    p = tmp_path / "rules.yaml"
    p.write_text(f"rules:\n  - id: r\n    when: {when}\n    category: c\n")
    with pytest.raises(ConfigError) as err:
        load_rules(p)
    text = "\n".join(err.value.problems)
    assert f"{p}:{path}" in text and reason in text, text
