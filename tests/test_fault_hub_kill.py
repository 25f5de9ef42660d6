"""Faults with real processes (issue 16): the hub SIGKILLed while the agent forwards a burst, then
restarted on the same database. Every injected leak becomes exactly one case."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from edge.agent import Agent
from tests.agentkit import GAS_RULES, Gateway, agent_config, wait_until
from tests.hubkit import EDGE, OPS, ROOT, Hub

pytestmark = pytest.mark.slow



def gas_cases(hub: Hub) -> list[dict]:
    try:
        r = httpx.get(f"{hub.url}/api/v1/cases", params={"category": "gas_leak", "limit": 5000},
                      headers={"Authorization": f"Bearer {OPS}"}, timeout=10)
    except httpx.HTTPError:
        return []
    return list(r.json()["cases"]) if r.is_success else []


def leaks_through(tmp_path: Path, broker, hub: Hub, fault: Callable[[], None],
                  recover: Callable[[], None] = lambda: None) -> None:
    """60 gas leaks published to a real agent that forwards to `hub`: `fault` runs once 21 are published and
    the first case exists, `recover` after the last one. Then every leak must be exactly one case and the
    agent's outbox must drain."""
    agent = Agent(agent_config(tmp_path / "agent", broker, hub.url, GAS_RULES,
                               hub={"key": EDGE, "batch_size": 5, "backoff_min": "0.1s", "backoff_max": "1s"}))
    agent.start()
    gw = Gateway(broker)
    try:
        assert agent.mqtt.wait_connected(10)
        devices = [f"gas-{i:03d}" for i in range(60)]
        for i, dev in enumerate(devices):
            gw.reading("grid-01", dev, ch4_ppm=9000.0)
            if i == 20:
                assert wait_until(lambda: len(gas_cases(hub)) > 0, timeout=20)
                fault()
        recover()

        def own() -> list[dict]:  # the broker is shared with other test files: only this test's devices
            return [c for c in gas_cases(hub) if c["device"] in set(devices)]
        assert wait_until(lambda: len(own()) >= len(devices), timeout=60)
        time.sleep(1.0)
        assert sorted(c["device"] for c in own()) == devices  # each leak exactly one case
        assert wait_until(lambda: agent.outbox.depth() == 0, timeout=20)
    finally:
        gw.close()
        agent.stop()


def test_hub_sigkill_mid_burst_loses_and_doubles_nothing(tmp_path, broker):
    hub = Hub(tmp_path / "hub", (ROOT / "configs/sla.yaml").read_text()).start()

    def kill() -> None:
        assert hub.proc is not None
        hub.proc.kill()  # SIGKILL: mid-batch, no clean shutdown
        hub.proc.wait(10)
        hub.proc = None

    def restart() -> None:
        time.sleep(1.0)  # the agent meets a dead hub and backs off
        hub.start()  # same port, same database

    try:
        leaks_through(tmp_path, broker, hub, kill, restart)
    finally:
        hub.stop()


def test_postgresql_crash_under_the_hub_loses_and_doubles_nothing(tmp_path, broker):
    """PostgreSQL stopped with `-m immediate` (a crash: every connection cut, no checkpoint) while the agent
    forwards a burst, and started again 3 s later on the same data. Meanwhile the hub answers 503 (the
    forwarder keeps its alerts), its scheduler, stream reader and MQTT leadership retry; afterwards every
    leak is exactly one case and the hub is healthy again."""
    from simulators.services import start_postgres

    pg = start_postgres()
    hub = Hub(tmp_path / "hub", (ROOT / "configs/sla.yaml").read_text(), database=pg.url).start()

    def crash() -> None:
        pg.stop()
        time.sleep(0.5)
        assert httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 503
        time.sleep(2.5)
        pg.restart()

    try:
        leaks_through(tmp_path, broker, hub, crash)
        assert httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200
    finally:
        hub.stop()
        pg.stop()
