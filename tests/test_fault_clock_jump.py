"""Faults suite: the wall clock steps (NTP after a bad RTC, an operator) while devices keep reporting
(issue 16); the devices' stamps follow the same clock (gateways on the site's NTP server, or feeds that
send no time and are stamped on receipt). On the old main a step of +1 h found every device silent at once
(5 of 5 device_offline alerts, all false), and after a step of -1 h every reading was "out of order" for
an hour, so the gas leak was missed and every device went silent. Now the step is taken out (the
monotonic clock does not step): nothing fires on the step, and each injected incident (a gas leak, a
device that really goes silent) is exactly one alert, on time."""

from __future__ import annotations

import json

from edge.agent import Agent
from edge.message import Message
from tests.agentkit import agent_config

RULES = """
rules:
  - id: gas-high
    match: {metric: ch4_ppm}
    when: {above: 5000}
    category: gas_leak
  - id: silent
    match: {kind: sensor}
    when: {stale_for: 120s}
    category: device_offline
"""
DEVICES = [f"gas-{i}" for i in range(1, 6)]


class Clocks:
    """A wall clock that can be stepped, and a monotonic one that cannot."""

    def __init__(self, start: float) -> None:
        self.wall, self.mono = start, 1000.0

    def run(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def step(self, seconds: float) -> None:
        self.wall += seconds


def readings(c: Clocks, devices: list[str], ch4: float = 100.0) -> list[Message]:
    return [Message(f"gw/grid-01/sensor/{d}/reading", json.dumps(
        {"ts": int(c.wall * 1000), "metrics": {"ch4_ppm": ch4 if d != "gas-3" else c.gas3}}).encode(), c.wall)
        for d in devices]


def play(agent: Agent, c: Clocks, seconds: int, devices: list[str]) -> list:
    """Every device reports every 10 s for `seconds`; the alerts raised meanwhile."""
    out = []
    for _ in range(seconds // 10):
        c.run(10)
        out += agent.step(readings(c, devices))
    return out


def run_with_step(tmp_path, broker, hub, step: float) -> tuple[list, list, list, float]:
    c = Clocks(1_795_000_000.0)
    c.gas3 = 100.0  # type: ignore[attr-defined]
    agent = Agent(agent_config(tmp_path, broker, hub.url, RULES, metrics=None), clock=lambda: c.wall,
                  monotonic=lambda: c.mono)
    try:
        before = play(agent, c, 60, DEVICES)
        c.step(step)  # the agent's clock steps; the devices' do not
        at_step = play(agent, c, 30, DEVICES)
        c.gas3 = 9000.0  # type: ignore[attr-defined]  # incident 1: a gas leak
        after = play(agent, c, 20, DEVICES)
        c.gas3 = 100.0  # type: ignore[attr-defined]
        after += play(agent, c, 200, [d for d in DEVICES if d != "gas-5"])  # incident 2: gas-5 falls silent
        return before, at_step, after, agent.metrics.value("gridwatch_edge_clock_steps_total")
    finally:
        agent.stop()


def firing(alerts: list) -> list[tuple[str, str]]:
    return sorted((a.rule_id, a.device_id) for a in alerts if a.state == "firing")


def test_a_forward_step_raises_no_false_silence(tmp_path, broker, hub):
    before, at_step, after, steps = run_with_step(tmp_path, broker, hub, +3600.0)
    assert before == [] and at_step == []  # was: 5 device_offline alerts the moment the clock stepped
    assert firing(after) == [("gas-high", "gas-3"), ("silent", "gas-5")]
    assert steps == 1


def test_a_backward_step_does_not_delay_a_silence(tmp_path, broker, hub):
    before, at_step, after, steps = run_with_step(tmp_path, broker, hub, -3600.0)
    assert before == [] and at_step == []
    assert firing(after) == [("gas-high", "gas-3"), ("silent", "gas-5")]  # was: all five silent, no leak
    assert steps == 1
