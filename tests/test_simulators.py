"""The simulators: deterministic models, scenario files validated with file:path: reason errors, and
`sim load` holding its rate and measuring publish→case latency against a real broker, agent and hub."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edge.agent import Agent
from edge.errors import ConfigError
from edge.rules.loader import load_rules
from simulators.devices import SensorModel
from simulators.load import LoadSpec, percentile, run_load
from simulators.player import Connection
from simulators.scenario import load_scenario
from simulators.scenes import CameraSim, HotSpot, ThermalSim, View, Walker
from tests.agentkit import agent_config
from tests.hubkit import EDGE, OPS, Hub

SLOW_SLA = """
policies:
  - id: slow
    calendar: 24x7
    limits: {accept: 2h, resolve: 8h, feedback: 8h}
"""


def test_models_are_deterministic_for_a_seed_and_realistic():
    a, b = SensorModel("gas", seed=3), SensorModel("gas", seed=3)
    va = [a.value(t, 1_795_000_000 + t) for t in range(100)]
    assert va == [b.value(t, 1_795_000_000 + t) for t in range(100)]
    assert all(500 < v < 1100 for v in va)  # baseline 800 ppm, noise and daily cycle
    day = SensorModel("temperature", seed=1)
    midnight_utc = 1_795_000_000 - 1_795_000_000 % 86400
    afternoon = day.value(0, midnight_utc + 6 * 3600)  # 14:00 at UTC+8
    night = day.value(0, midnight_utc + 18 * 3600)  # 02:00 at UTC+8
    assert afternoon - night > 6  # the daily cycle: 4 °C each way
    walk = Walker(((0.0, 0.5), (1.0, 0.5)), start=1.0, speed=0.5)
    assert walk.where(0.5) is None and walk.where(2.0) == (0.5, 0.5) and walk.where(4.0) is None
    assert CameraSim(5).jpeg(1.0, View(walkers=[walk])) == CameraSim(5).jpeg(1.0, View(walkers=[walk]))
    temps = ThermalSim(seed=2).celsius(10.0, [HotSpot(0.5, 0.5, start=0.0, rate=10.0, peak=90.0)])
    assert math.isclose(float(temps.max()), 90.0, abs_tol=2.0) and float(temps.min()) < 30


GAS = "devices: [{id: gas-01, grid: grid-01, model: gas}]\n"


@pytest.mark.parametrize(("text", "where"), [
    ("devices: [{id: gas-01, grid: grid-01, kind: sensor, model: laser}]", "devices[0]"),
    (GAS + "incidents: [{id: x, at: 5s, device: gas-09, do: {silent: true}}]",
     "no device 'gas-09'"),
    (GAS + "incidents: [{id: x, at: 5s, device: gas-01, do: {cover: true}}]",
     "['cover'] do not apply to a sensor"),
    (GAS + "incidents: [{id: x, at: 90s, device: gas-01, do: {silent: true}}]",
     "after the end"),
    (GAS + "incidents: [{id: x, at: 5s, device: gas-01, do: {levle: 3}}]",
     "incidents[0].do.levle: unknown key"),
])
def test_bad_scenarios_name_file_path_and_reason(tmp_path, text, where):
    p = tmp_path / "s.yaml"
    p.write_text(f"name: t\nduration: 60s\n{text}\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(p)
    out = "\n".join(err.value.problems)
    assert str(p) in out and where in out, out


@pytest.mark.parametrize("path", sorted(Path("simulators/scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_shipped_scenarios_are_valid_and_name_rules_that_exist(path):
    sc = load_scenario(path)
    if any(d.kind == "camera" for d in sc.devices):  # the full scenarios; gateways.yaml is about sensors
        assert {i.expect.category for i in sc.incidents if i.expect} >= {"gas_leak", "intrusion", "tamper", "fire"}
    assert any(i.expect is None for i in sc.incidents)  # it has distractors
    rules = {r.id: r for r in load_rules(sc.rules).rules}
    for inc in sc.incidents:
        if inc.expect is not None:
            rule = rules[inc.expect.rule]
            levels = getattr(rule.when, "levels", None)  # a rule with warning levels opens at its first level's
            severities = {lv.raises for lv in levels[:1]} if levels else {rule.severity}
            assert rule.category == inc.expect.category and inc.expect.severity in severities, inc.id


@pytest.mark.slow
def test_sim_load_holds_its_rate_and_measures_case_latency(tmp_path, broker):
    hub = Hub(tmp_path / "hub", SLOW_SLA).start()
    rules = """
    rules:
      - id: gas-high
        match: {metric: ch4_ppm}
        when: {above: 5000}
        severity: critical
        category: gas_leak
    """
    cfg = agent_config(tmp_path / "edge", broker, hub.url, rules)
    agent = Agent(cfg.model_copy(update={"hub": cfg.hub.model_copy(update={"key": EDGE})}))
    agent.start()
    try:
        assert agent.mqtt.wait_connected(10)
        rep = run_load(LoadSpec(devices=40, rate=400, duration=3, incidents=3, hub=hub.url, key=OPS, settle=20),
                       Connection(broker.host, broker.port))
        # the report's own `rate_ok` is ±5% (what bench/sim_load.py holds on a quiet machine); in a loaded CI run
        # (three test workers on two cores) this process once stalled 0.4 s of the 3 s, so the test allows 15%:
        # still far from a pacing that is broken (twice too fast, or a publisher that cannot keep up at all)
        assert rep["published"] == 1200 and rep["rate_error"] <= 0.15, rep
        assert rep["incidents"] == 3 and rep["cases_found"] == 3, rep
        assert 0 < rep["latency_ms_p50"] <= rep["latency_ms_p99"] < 10_000
    finally:
        agent.stop()
        hub.stop()


def test_percentile():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0 and percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0
