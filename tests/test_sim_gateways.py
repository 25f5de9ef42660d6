"""The simulator speaks the gateway presets: the shipped mixed-gateway scenario, played through Mosquitto
into an agent running configs/gateways/edge.yaml, raises exactly its expected alerts on the right devices
and grids; `--as` turns a native scenario into any gateway's wire shape."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge.agent import Agent
from edge.config import load_edge_config
from simulators.player import Connection, Player
from simulators.scenario import load_scenario
from simulators.services import start_mosquitto, stop_pid
from tests.agentkit import KEY, wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A broker of these tests' own: the session's keeps other tests' retained statuses, which an agent
    taking the native topics beside the gateways' would see."""
    b = start_mosquitto(tmp_path_factory.mktemp("gateways-broker"))
    yield b
    stop_pid(b.proc)


def gateway_agent(tmp_path: Path, broker, hub) -> Agent:
    cfg = load_edge_config(ROOT / "configs/gateways/edge.yaml")
    cfg = cfg.model_copy(update={
        "mqtt": cfg.mqtt.model_copy(update={"host": broker.host, "port": broker.port,
                                            "client_id": f"edge-{tmp_path.name}"[:60]}),
        "outbox": cfg.outbox.model_copy(update={"path": tmp_path / "outbox.sqlite", "synchronous": "normal"}),
        "hub": cfg.hub.model_copy(update={"url": hub.url, "key": KEY, "key_env": None, "backoff_max": 2.0}),
        "metrics": cfg.metrics.model_copy(update={"port": 0}) if cfg.metrics else None})
    return Agent(cfg)


def test_mixed_gateway_scenario_raises_its_expected_alerts(tmp_path, broker, hub):
    sc = load_scenario(ROOT / "simulators/scenarios/gateways.yaml")
    assert len({d.gateway for d in sc.devices}) >= 4
    agent = gateway_agent(tmp_path, broker, hub)
    agent.start()
    player = None
    try:
        assert agent.mqtt.wait_connected(10)
        player = Player(sc, Connection(broker.host, broker.port), client_prefix=f"sim-{tmp_path.name}"[:40])
        stop = threading.Event()
        t = threading.Thread(target=player.run, kwargs={"duration": 0, "stop": stop})
        t.start()
        expected = {(i.expect.rule, i.device) for i in sc.incidents if i.expect is not None}
        grids = {d.id: d.grid for d in sc.devices}
        ours = lambda: [a for a in hub.unique.values() if a["device_id"] in grids]  # noqa: E731
        seen = lambda: {(a["rule_id"], a["device_id"]) for a in ours() if a["state"] == "firing"}  # noqa: E731
        ok = wait_until(lambda: expected <= seen(), 40)
        stop.set()
        t.join(10)
        assert ok, (sorted(expected), sorted(seen()))
        assert seen() == expected  # nothing else: baselines of every gateway kind stay quiet
        for a in ours():
            assert a["grid_id"] == grids[a["device_id"]], a
        rejected = [(s.labels, s.value) for m in agent.metrics.rejected.collect() for s in m.samples
                    if s.name.endswith("_total") and s.value]
        assert rejected == [], rejected  # no message of any gateway kind was refused
    finally:
        if player is not None:
            player.close()
        agent.stop()


@pytest.mark.parametrize("shape", ["huawei-iotda", "onenet"])
def test_sim_as_plays_a_native_scenario_as_another_gateway(tmp_path, broker, hub, shape):
    sc = load_scenario(ROOT / "simulators/scenarios/gateways.yaml")
    sc = sc.model_copy(update={"devices": [d for d in sc.devices if d.id == "gas-n1"] + [
        d.model_copy(update={"gateway": "gridwatch"}) for d in sc.devices if d.id == "gas-z2"],
        "incidents": [i.model_copy(update={"at": 1.0}) for i in sc.incidents if i.device == "gas-z2"]})
    cfg = load_edge_config(ROOT / "configs/gateways/edge.yaml")
    feeds = [{"preset": shape, "grid": "@registry"}]
    devices = [{"id": "gas-n1", "grid": "grid-03"}, {"id": "gas-z2", "grid": "grid-01"}]
    from tests.agentkit import agent_config
    agent = Agent(agent_config(tmp_path, broker, hub.url, cfg.rules.read_text(), feeds=feeds,
                               devices={"list": devices}))
    agent.start()
    player = None
    try:
        assert agent.mqtt.wait_connected(10)
        player = Player(sc, Connection(broker.host, broker.port), client_prefix=f"as-{shape}", as_=shape)
        stop = threading.Event()
        t = threading.Thread(target=player.run, kwargs={"duration": 0, "stop": stop})
        t.start()
        ok = wait_until(lambda: any(a["device_id"] == "gas-z2" and a["rule_id"] == "gas-high"
                                    for a in hub.unique.values()), 30)
        stop.set()
        t.join(10)
        assert ok
        # both devices' readings arrived through the preset
        assert {st["dev"] for st in agent.engine.states.values()} >= {"gas-n1", "gas-z2"}
    finally:
        if player is not None:
            player.close()
        agent.stop()
