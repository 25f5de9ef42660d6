"""One grid per device and a cap on devices (issue 16.5): a reading under another grid's topic no longer
shares (and blinds) a device's rule state or opens a case in that grid, and made-up device ids stop at
`limits.max_devices`. On the old main both went through: the grid-07 alert was raised and 10 of 10
made-up devices got state."""

from __future__ import annotations

import time

from edge.agent import Agent
from edge.message import Message
from tests.agentkit import GAS_RULES, agent_config


def reading(grid: str, device: str, ch4: float, ts: float) -> Message:
    body = f'{{"ts": {int(ts * 1000)}, "metrics": {{"ch4_ppm": {ch4}}}}}'.encode()
    return Message(f"gw/{grid}/sensor/{device}/reading", body, ts)


def test_a_device_keeps_its_grid_and_made_up_devices_stop_at_the_cap(tmp_path, broker, hub):
    cfg = agent_config(tmp_path, broker, hub.url, GAS_RULES, limits={"max_devices": 5},
                       devices={"list": [{"id": "gas-listed", "grid": "grid-02"}]}, metrics=None)
    agent = Agent(cfg)
    try:
        now = time.time()
        assert agent.step([reading("grid-01", "gas-01", 100.0, now)]) == []
        # the same id under grid-07's topic: refused, not an alert in grid-07, not a reading of gas-01
        assert agent.step([reading("grid-07", "gas-01", 9000.0, now + 1)]) == []
        assert agent.step([reading("grid-09", "gas-listed", 9000.0, now + 1)]) == []
        assert agent.metrics.value("gridwatch_edge_rejected_total", reason="grid_mismatch") == 2
        [alert] = agent.step([reading("grid-01", "gas-01", 9000.0, now + 2)])  # its own grid: as ever
        assert (alert.grid_id, alert.device_id) == ("grid-01", "gas-01")
        # 10 made-up ids: 3 more fit (gas-01 and the listed one count), the rest are refused
        agent.step([reading("grid-01", f"fake-{i}", 100.0, now + 3) for i in range(10)])
        assert agent.metrics.value("gridwatch_edge_rejected_total", reason="device_cap") == 7
        assert {st["dev"] for st in agent.engine.states.values()} <= {"gas-01", "fake-0", "fake-1", "fake-2"}
        assert agent.step([reading("grid-01", "gas-01", 100.0, now + 4)])  # known devices carry on (resolved)
    finally:
        agent.stop()
