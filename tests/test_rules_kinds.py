"""The other rule kinds: rate, stale, fence events, count, windows, schedule, stuck, correlation, suppression."""

from __future__ import annotations

import pytest

from tests.rulekit import T0, Driver, engine, fence, reading, status


def test_rate_above_per_window(tmp_path):
    d = Driver(engine(tmp_path, """
rules:
  - id: water-rising
    match: {metric: water_level_m}
    when: {rate_above: 0.2, per: 60s}
    category: flood
"""))
    for i in range(7):  # 0.1 m/min: nothing
        d.send(reading(i * 10, device="w1", water_level_m=1.0 + i * 0.1 / 6))
    assert d.alerts == []
    for i in range(7, 14):  # 0.6 m/min
        d.send(reading(i * 10, device="w1", water_level_m=1.1 + (i - 6) * 0.1))
    assert d.states() == ["firing"]
    assert d.alerts[0].value > 0.2
    for i in range(14, 24):  # level steady: rate falls to 0 and clears
        d.send(reading(i * 10, device="w1", water_level_m=1.8))
    assert d.states() == ["firing", "resolved"]


STALE = """
rules:
  - id: sensor-silent
    match: {kind: sensor}
    when: {stale_for: 120s}
    severity: minor
    category: device_offline
"""


def test_stale_fires_for_a_silent_device_on_the_clock_and_clears_on_data(tmp_path):
    d = Driver(engine(tmp_path, STALE))
    d.send(reading(0, temp_c=20))
    d.send(reading(60, temp_c=20))
    assert d.at(179) == []
    fired = d.at(180)
    assert [a.state for a in fired] == ["firing"] and fired[0].category == "device_offline"
    assert d.at(10_000) == []  # one episode, however long the silence
    d.send(reading(10_001, temp_c=20))
    assert d.states() == ["firing", "resolved"]


def test_stale_fires_on_lwt_offline_at_once(tmp_path):
    d = Driver(engine(tmp_path, STALE))
    d.send(reading(0, temp_c=20))
    d.send(status(5, "offline"))
    assert d.states() == ["firing"]
    assert d.at(500) == []
    d.send(status(600, "online"))
    assert d.states() == ["firing", "resolved"]


def test_stale_for_configured_device_never_heard(tmp_path):
    eng = engine(tmp_path, STALE)
    eng.seed("grid-01", "gas-09", "sensor", T0)
    d = Driver(eng)
    assert [a.device_id for a in d.at(121)] == ["gas-09"]


FENCE = """
rules:
  - id: fence-breach
    match: {kind: fence}
    when: {event: breach, clear_after: 60s}
    severity: major
    category: intrusion
"""


def test_fence_event_fires_once_per_zone_and_resolves_on_restore_or_quiet(tmp_path):
    d = Driver(engine(tmp_path, FENCE))
    d.send(fence(0, "breach"))
    d.send(fence(5, "breach"))
    d.send(fence(6, "breach", zone="z2"))
    assert d.states() == ["firing", "firing"]
    assert {a.labels["zone"] for a in d.alerts} == {"z1", "z2"}
    d.send(fence(10, "restore"))
    assert d.states() == ["firing", "firing", "resolved"]
    assert d.at(65) == []
    assert [a.labels["zone"] for a in d.at(66)] == ["z2"]


def test_count_within_window(tmp_path):
    d = Driver(engine(tmp_path, """
rules:
  - id: repeated-tamper
    match: {kind: fence}
    when: {count: 3, within: 60s, event: tamper}
    category: tamper
"""))
    d.send(fence(0, "tamper"))
    d.send(fence(30, "tamper"))
    d.send(fence(30, "breach"))
    d.send(fence(70, "tamper"))  # the first fell out of the window
    assert d.alerts == []
    d.send(fence(80, "tamper"))
    assert d.states() == ["firing"]
    d.send(fence(85, "tamper"))
    d.at(140)
    assert d.states() == ["firing", "resolved"]


def test_window_avg_and_max(tmp_path):
    d = Driver(engine(tmp_path, """
rules:
  - id: smoke-avg
    match: {metric: smoke}
    when: {avg: 60s, above: 10, min_samples: 3}
    category: fire
  - id: smoke-max
    match: {metric: smoke}
    when: {max: 30s, above: 50}
    category: fire
"""))
    d.send(reading(0, smoke=30))
    d.send(reading(10, smoke=0))
    assert d.alerts == []  # two samples only
    d.send(reading(20, smoke=3))
    assert d.states("smoke-avg") == ["firing"]
    d.send(reading(30, smoke=60))
    assert d.states("smoke-max") == ["firing"]
    for t in range(40, 140, 10):
        d.send(reading(t, smoke=1))
    assert d.states("smoke-avg") == ["firing", "resolved"]
    assert d.states("smoke-max") == ["firing", "resolved"]


def test_schedule_in_local_time_across_midnight(tmp_path):
    d = Driver(engine(tmp_path, """
rules:
  - id: night-fence
    match: {kind: fence}
    when: {event: breach}
    schedule: {active: ["22:00-06:00"], tz: Asia/Shanghai}
    category: intrusion
"""))
    from datetime import datetime
    from zoneinfo import ZoneInfo
    noon = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() - T0
    night = datetime(2026, 11, 24, 2, 30, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() - T0
    d.send(fence(noon, "breach"))
    assert d.alerts == []
    d.send(fence(night, "breach"))
    assert d.states() == ["firing"]


def test_stuck_sensor_raises_device_fault(tmp_path):
    d = Driver(engine(tmp_path, """
rules:
  - id: water-stuck
    match: {metric: water_level_m}
    when: {stuck_for: 10m, tolerance: 0.001}
    category: device_fault
"""))
    for t in range(0, 600, 60):
        d.send(reading(t, water_level_m=1.4201))
    assert d.alerts == []
    d.send(reading(600, water_level_m=1.4205))
    assert d.states() == ["firing"]
    d.send(reading(660, water_level_m=1.5))
    assert d.states() == ["firing", "resolved"]


SUPPRESS = """
rules:
  - id: fence-power-lost
    match: {kind: fence}
    when: {event: fault}
    category: protection_degraded
  - id: fence-breach
    match: {kind: fence}
    when: {event: breach}
    suppressed_by: [fence-power-lost]
    category: intrusion
"""


def test_suppressed_by_inhibits_in_same_device_only(tmp_path):
    d = Driver(engine(tmp_path, SUPPRESS))
    d.send(fence(0, "fault"))
    d.send(fence(1, "breach"))
    d.send(fence(2, "breach", device="fence-02"))
    assert [(a.rule_id, a.device_id) for a in d.alerts] == [
        ("fence-power-lost", "fence-01"), ("fence-breach", "fence-02")]
    assert d.eng.ignored["suppressed"] == 1


def test_suppressed_alarm_fires_when_suppressor_clears_while_still_active(tmp_path):
    d = Driver(engine(tmp_path, SUPPRESS))
    d.send(fence(0, "fault"))
    d.send(fence(1, "breach"))
    d.send(fence(2, "restore"))  # clears both fault and breach in zone z1
    assert d.states("fence-breach") == []
    d.send(fence(3, "fault"))
    d.send(fence(4, "breach", zone="z2"))
    d.send(fence(5, "restore"))  # z1 fault clears; z2 breach is still live
    assert d.states("fence-breach") == ["firing"]


def test_all_of_correlation_same_grid_within_window(tmp_path):
    d = Driver(engine(tmp_path, """
rules:
  - id: fence-breach
    match: {kind: fence}
    when: {event: breach, clear_after: 120s}
    category: intrusion
  - id: gas-high
    match: {metric: ch4_ppm}
    when: {above: 5000}
    category: gas_leak
  - id: breach-and-gas
    when: {all_of: [fence-breach, gas-high], within: 30s, same: grid}
    severity: critical
    category: intrusion
"""))
    d.send(fence(0, "breach"))
    d.send(reading(60, ch4_ppm=6000, device="gas-77", grid="grid-02"))  # another grid
    d.send(reading(100, ch4_ppm=6000))  # same grid but 100 s later
    assert d.states("breach-and-gas") == []
    d.send(fence(110, "breach", zone="z2"))
    assert d.states("breach-and-gas") == ["firing"]
    corr = [a for a in d.alerts if a.rule_id == "breach-and-gas"][0]
    assert corr.grid_id == "grid-01" and corr.severity == "critical"


def test_window_running_totals_match_brute_force(tmp_path):
    import random

    from tests.rulekit import ruleset

    rs = ruleset(tmp_path, """
rules:
  - {id: a, match: {metric: x}, when: {avg: 60s, above: 1e9}, category: c}
  - {id: hi, match: {metric: x}, when: {max: 60s, above: 1e9}, category: c}
  - {id: lo, match: {metric: x}, when: {min: 60s, above: 1e9}, category: c}
""")
    rng = random.Random(3)
    states = {rid: {} for rid in ("a", "hi", "lo")}
    seen: list[tuple[float, float]] = []
    t = 0
    for _ in range(600):
        t += rng.choice([1, 1, 2, 5, 13])
        v = rng.uniform(-50, 50)
        seen.append((t, v))
        inside = [x for ts, x in seen if ts > t - 60]
        ev = reading(t, x=v)
        got = {rid: rs.rules[rid].evaluator.observe(states[rid], ev).value for rid in states}
        assert got["a"] == pytest.approx(sum(inside) / len(inside), abs=1e-9)
        assert got["hi"] == max(inside) and got["lo"] == min(inside)
