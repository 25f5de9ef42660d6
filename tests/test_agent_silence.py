"""Silence after the agent was away (issue 15): after a restart or a broker outage longer than `stale_for`,
every device used to be called silent at once (20 of 20 device_offline cases in the issue's probe) before
the readings queued for the agent were even read; and an agent sharded by grid seeded every listed device,
raising false offline alerts for other agents' devices. Now silence counts from when the agent listens
again, and only its own grids' devices are seeded."""

from __future__ import annotations

from edge.agent import Agent
from tests.agentkit import agent_config
from tests.rulekit import T0
from tests.test_agent_state import NOBROKER, Clock, msg

RULES = """
rules:
  - id: silent
    match: {kind: sensor}
    when: {stale_for: 120s}
    category: device_offline
"""
DEVICES = [f"gas-{i:02d}" for i in range(20)]


def make(tmp_path, clock: Clock, **over) -> Agent:
    return Agent(agent_config(tmp_path, NOBROKER, "http://127.0.0.1:1", RULES, rewrite_rules=False, **over),
                 clock=clock)


def test_a_restart_after_a_long_absence_calls_nobody_silent_before_the_queue_is_read(tmp_path):
    clock = Clock()
    first = make(tmp_path, clock)
    assert first.step([msg(0, device=d, ch4_ppm=100.0) for d in DEVICES]) == []
    first.stop()
    clock.t = T0 + 600  # ten minutes away (stale_for is two)
    again = make(tmp_path, clock)
    try:
        assert again.step([]) == []  # was: 20 device_offline alerts here
        # the queued readings arrive: 19 devices had spoken while the agent was away, gas-19 had not
        queued = [msg(300, device=d, ch4_ppm=100.0) for d in DEVICES[:19]]
        for m in queued:
            m.received_at = clock.t + 1  # stamped at 300 s by the devices, received now
        clock.t += 1
        assert again.step(queued) == []
        clock.t = T0 + 600 + 120.5  # gas-19: 120.5 s since the agent came back; the others: 119.5 s
        fired = again.step([])
        assert [(a.device_id, a.state) for a in fired] == [("gas-19", "firing")]  # silent since the agent was back
    finally:
        again.stop()


def test_after_a_broker_outage_silence_counts_from_the_reconnection(tmp_path):
    clock = Clock()
    agent = make(tmp_path, clock)
    try:
        assert agent.step([msg(0, device=d, ch4_ppm=100.0) for d in DEVICES[:5]]) == []
        clock.t = T0 + 100
        agent.mqtt.reconnected.set()  # as on_subscribe sets it after a lost connection (the outage: 100 s)
        assert agent.step([]) == []
        clock.t = T0 + 130  # 130 s since the last reading, 30 s since the agent listens again
        assert agent.step([]) == []
        clock.t = T0 + 221
        assert sorted(a.device_id for a in agent.step([])) == DEVICES[:5]
    finally:
        agent.stop()


def test_no_device_is_called_silent_while_the_agent_is_cut_off_from_the_broker(tmp_path):
    """Issue 31: a broker node dies and the agent needs longer than `stale_for` to get to the next one (or the
    only broker is down): the devices did not go quiet, the agent went deaf. Old main raised all five here."""
    clock = Clock()
    agent = make(tmp_path, clock)
    try:
        assert agent.step([msg(0, device=d, ch4_ppm=100.0) for d in DEVICES[:5]]) == []
        agent.mqtt._was_connected = True  # it had listened, then lost the connection (on_disconnect)
        agent.mqtt.connected.clear()
        for t in (60, 121, 200, 300):
            clock.t = T0 + t
            assert agent.step([]) == [], f"called silent at {t} s while the agent could not hear"
        agent.mqtt.connected.set()  # back (on_subscribe): silence counts from the last round it was deaf
        agent.mqtt.reconnected.set()
        clock.t = T0 + 301
        assert agent.step([]) == []
        clock.t = T0 + 421
        assert sorted(a.device_id for a in agent.step([])) == DEVICES[:5]
    finally:
        agent.stop()


def test_a_sharded_agent_seeds_only_its_own_grids_devices(tmp_path):
    clock = Clock()
    devices = {"list": [{"id": "gas-a", "grid": "grid-01"}, {"id": "gas-b", "grid": "grid-07"}]}
    agent = make(tmp_path, clock, grids=["grid-01"], devices=devices)
    try:
        clock.t = T0 + 121
        assert [a.device_id for a in agent.step([])] == ["gas-a"]  # was: gas-b too, another agent's device
    finally:
        agent.stop()
