"""Threshold rules: hold time, hysteresis, clear timers, episodes and alert ids, on an injected clock."""

from __future__ import annotations

from tests.rulekit import Driver, engine, reading

GAS = """
rules:
  - id: gas-high
    match: {kind: sensor, metric: ch4_ppm, devices: ["gas-*"]}
    when: {above: 5000, for: 10s, clear_below: 4000}
    severity: critical
    category: gas_leak
    message: "CH4 {value:.0f} ppm at {device}"
"""


def test_spike_shorter_than_hold_raises_nothing(tmp_path):
    d = Driver(engine(tmp_path, GAS))
    d.send(reading(0, ch4_ppm=6000))
    d.send(reading(5, ch4_ppm=3000))
    d.at(30)
    assert d.alerts == []


def test_held_breach_fires_once_on_the_clock_without_a_new_reading(tmp_path):
    d = Driver(engine(tmp_path, GAS))
    d.send(reading(0, ch4_ppm=6000))
    assert d.at(9.9) == []
    fired = d.at(10.0)
    assert [a.state for a in fired] == ["firing"]
    a = fired[0]
    assert a.rule_id == "gas-high" and a.category == "gas_leak" and a.severity == "critical"
    assert a.message == "CH4 6000 ppm at gas-01"
    assert a.model_dump(mode="json")["started_at"].endswith("Z") and a.device_id == "gas-01" and a.grid_id == "grid-01"
    assert len(a.rule_hash) == 12
    for t in range(11, 60, 3):
        d.send(reading(t, ch4_ppm=7000))
    assert d.states() == ["firing"]


def test_flapping_in_band_raises_nothing_more_and_clear_resolves_with_same_id(tmp_path):
    d = Driver(engine(tmp_path, GAS))
    d.send(reading(0, ch4_ppm=6000))
    d.at(10)
    for i, v in enumerate([4500, 5100, 4200, 5900, 4001, 4999]):
        d.send(reading(11 + i, ch4_ppm=v))
    assert d.states() == ["firing"]
    d.send(reading(20, ch4_ppm=3999))
    assert d.states() == ["firing", "resolved"]
    assert d.alerts[0].alert_id == d.alerts[1].alert_id
    d.send(reading(21, ch4_ppm=3000))
    assert d.states() == ["firing", "resolved"]


def test_new_episode_gets_new_id_and_ids_are_deterministic(tmp_path):
    runs = []
    for _ in range(2):
        d = Driver(engine(tmp_path, GAS))
        for t, v in [(0, 6000), (10, 6000), (20, 100), (30, 6000), (40, 6000), (50, 100)]:
            d.send(reading(t, ch4_ppm=v))
        runs.append([(a.alert_id, a.state) for a in d.alerts])
    assert runs[0] == runs[1]
    ids = [i for i, _ in runs[0]]
    assert len(runs[0]) == 4 and ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]


def test_other_devices_and_metrics_are_not_matched(tmp_path):
    d = Driver(engine(tmp_path, GAS))
    d.send(reading(0, device="water-01", ch4_ppm=9000))
    d.send(reading(0, co_ppm=9000))
    d.at(100)
    assert d.alerts == []


def test_below_with_clear_above_and_clear_for(tmp_path):
    d = Driver(engine(tmp_path, """
rules:
  - id: low-pressure
    match: {metric: bar}
    when: {below: 2.0, clear_above: 2.5, clear_for: 30s}
    category: pressure
"""))
    d.send(reading(0, bar=1.5))
    assert d.states() == ["firing"]
    d.send(reading(5, bar=2.6))
    d.send(reading(10, bar=1.9))  # back inside before clear_for: stays one episode
    d.send(reading(15, bar=2.7))
    assert d.at(44) == []
    assert [a.state for a in d.at(45)] == ["resolved"]


def test_outside_range(tmp_path):
    d = Driver(engine(tmp_path, """
rules:
  - id: temp-range
    match: {metric: temp_c}
    when: {outside: [0, 40]}
    category: temperature
"""))
    d.send(reading(0, temp_c=20))
    d.send(reading(1, temp_c=-3))
    d.send(reading(2, temp_c=41))
    d.send(reading(3, temp_c=30))
    assert d.states() == ["firing", "resolved"]


def test_out_of_order_and_duplicate_readings_are_ignored_and_counted(tmp_path):
    eng = engine(tmp_path, GAS)
    d = Driver(eng)
    d.send(reading(10, ch4_ppm=100))
    d.send(reading(5, ch4_ppm=9000))  # late: ignored, must not start a hold
    d.at(100)
    assert d.alerts == [] and eng.ignored["out_of_order"] == 1


def test_missing_data_never_clears_an_active_alarm(tmp_path):
    d = Driver(engine(tmp_path, GAS))
    d.send(reading(0, ch4_ppm=6000))
    d.at(10)
    d.at(10_000)
    assert d.states() == ["firing"]


def test_plausible_range_raises_device_fault_not_alarm(tmp_path):
    d = Driver(engine(tmp_path, """
rules:
  - id: gas-high
    match: {metric: ch4_ppm}
    when: {above: 5000}
    plausible: [0, 100000]
    category: gas_leak
"""))
    d.send(reading(0, ch4_ppm=655350))
    assert [(a.state, a.category, a.labels.get("fault")) for a in d.alerts] == [
        ("firing", "device_fault", "implausible")]
    d.send(reading(1, ch4_ppm=300))
    assert [(a.state, a.category) for a in d.alerts] == [("firing", "device_fault"),
                                                             ("resolved", "device_fault")]
    d.send(reading(2, ch4_ppm=6000))
    assert d.alerts[-1].category == "gas_leak" and d.alerts[-1].state == "firing"


def test_edited_rule_keeps_its_firing_episode_across_a_swap(tmp_path):
    from tests.rulekit import T0, ruleset

    d = Driver(engine(tmp_path, GAS))
    d.send(reading(0, ch4_ppm=6000))
    d.at(10)
    edited = GAS.replace("above: 5000", "above: 5500").replace("clear_below: 4000", "clear_below: 3000")
    assert d.eng.swap(ruleset(tmp_path, edited), T0 + 11) == []
    d.send(reading(12, ch4_ppm=3500))  # inside the new band: still firing
    d.send(reading(13, ch4_ppm=2000))
    assert d.states() == ["firing", "resolved"]
    assert d.alerts[0].alert_id == d.alerts[1].alert_id
    assert d.alerts[0].rule_hash != d.alerts[1].rule_hash


NO_MESSAGE = """
{lang}
rules:
  - id: gas-high
    match: {{kind: sensor, metric: ch4_ppm}}
    when: {{above: 5000, for: 10s}}
    plausible: [0, 100000]
    severity: critical
    category: gas_leak
"""


def test_default_messages_are_chinese_unless_the_rule_file_says_en(tmp_path):
    """Issue 29: the wall showed `gas-high (gas_leak) at gas-01` under Chinese headings."""
    texts = {}
    for lang in ("", "lang: zh-CN", "lang: en"):
        d = Driver(engine(tmp_path, NO_MESSAGE.format(lang=lang)))
        d.send(reading(0, ch4_ppm=6000))
        d.send(reading(1, device="gas-02", ch4_ppm=-5))  # outside plausible: a device fault
        texts[lang] = sorted(a.message for a in d.at(10.0) + d.alerts)
    assert texts[""] == texts["lang: zh-CN"]
    assert "燃气泄漏：gas-01，数值 6000" in texts[""], texts[""]
    assert any(m.startswith("gas-02 读数 ch4_ppm=-5 超出合理范围 [0.0, 100000.0]") for m in texts[""]), texts[""]
    assert "gas-high (gas_leak) at gas-01 value 6000" in texts["lang: en"], texts["lang: en"]
