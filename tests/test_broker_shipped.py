"""The shipped Mosquitto config and ACL (`configs/mosquitto/`), run as shipped (only the site lines are
pointed at this machine): persistence survives a broker crash (issue 16.3), gateways write only their own
grid, nobody but the hub writes case events, agents only read, and a client id cannot be taken over
(issue 16.4)."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import Agent
from simulators.services import start_shipped_mosquitto, stop_pid
from tests.agentkit import GAS_RULES, Gateway, agent_config, wait_until

pytestmark = pytest.mark.slow

USERS = {u: f"test-only-{u}-password" for u in ("edge-a", "edge-b", "hub", "viewer", "gw-grid-01", "gw-grid-07")}


def make_agent(tmp, broker, hub_url):
    cfg = agent_config(tmp, broker, hub_url, GAS_RULES, rewrite_rules=False,
                       mqtt={"username": "edge-a", "password": USERS["edge-a"], "client_id": "edge-a"})
    agent = Agent(cfg)
    seen: list[str] = []
    deliver = agent.mqtt.deliver

    def spy(msg):
        seen.append(msg.topic)
        deliver(msg)

    agent.mqtt.deliver = spy
    return agent, seen


def gateway(broker, user, client_id=""):
    return Gateway(broker, user, USERS[user], client_id=client_id)


def test_queued_readings_survive_a_broker_crash(tmp_path, hub):
    work = tmp_path / "mq"
    broker = start_shipped_mosquitto(work, USERS)
    agent, _ = make_agent(tmp_path / "agent", broker, hub.url)
    agent.start()
    assert agent.mqtt.wait_connected(10)
    agent.stop()  # the agent is away; its persistent session queues what comes
    gw = gateway(broker, "gw-grid-01")
    for i in range(100):
        gw.reading("grid-01", "gas-01", seq=i, ch4_ppm=100.0 + i)  # each acknowledged by the broker
    gw.close()
    time.sleep(2.5)  # autosave_interval 1: the store is on disk within a second or two
    broker.proc.kill()  # SIGKILL: no clean shutdown, no final save
    broker.proc.wait(10)
    broker = start_shipped_mosquitto(work, USERS, port=broker.port)
    try:
        again, seen = make_agent(tmp_path / "agent", broker, hub.url)
        again.start()
        try:
            assert wait_until(lambda: again.metrics.value("gridwatch_edge_messages_total", kind="sensor") >= 100,
                              timeout=30)
            assert again.metrics.value("gridwatch_edge_messages_total", kind="sensor") == 100
        finally:
            again.stop()
    finally:
        stop_pid(broker.proc)


def test_the_acl_isolates_gateways_agents_and_case_events(tmp_path, hub):
    broker = start_shipped_mosquitto(tmp_path / "mq", USERS)
    agent, seen = make_agent(tmp_path / "agent", broker, hub.url)
    drops = []
    agent_on_disconnect = agent.mqtt.client.on_disconnect

    def dropped(*a):  # the agent's own handler still runs: its `connected` flag stays the agent's own
        drops.append(a)
        agent_on_disconnect(*a)

    agent.mqtt.client.on_disconnect = dropped
    events: list[tuple[str, str]] = []  # (topic, case id): a forged event and the hub's share the topic
    viewer = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    viewer.username_pw_set("viewer", USERS["viewer"])
    subscribed = threading.Event()
    viewer.on_message = lambda c, u, m: events.append((m.topic, json.loads(m.payload).get("case_id")))
    viewer.on_subscribe = lambda *a: subscribed.set()
    viewer.on_connect = lambda c, *a: c.subscribe("gw/cases/#", qos=1)
    viewer.connect(broker.host, broker.port)
    viewer.loop_start()
    agent.start()
    gw01, gw07 = gateway(broker, "gw-grid-01"), gateway(broker, "gw-grid-07")
    try:
        assert agent.mqtt.wait_connected(10) and subscribed.wait(10)
        gw01.reading("grid-01", "gas-01", ch4_ppm=100.0)  # its own grid: allowed
        gw01.reading("grid-07", "gas-07", ch4_ppm=9000.0)  # another grid's feed
        gw01.publish("gw/grid-07/sensor/gas-07/status", "offline", retain=True)  # forged status
        gw01.publish("gw/cases/sensor/evil/reading", {"ts": int(time.time() * 1000), "metrics": {"ch4_ppm": 9e3}})
        gw01.publish("gw/cases/district-a", {"event": "case_opened", "case_id": "fake"})  # a fake case event
        as_agent = gateway(broker, "edge-b")  # an agent's login may only read
        assert as_agent.logged_in()  # the login itself works: what is refused is the write
        as_agent.reading("grid-01", "forged", ch4_ppm=9000.0)
        as_agent.close()
        hub_client = gateway(broker, "hub")
        assert hub_client.logged_in()
        hub_client.publish("gw/cases/district-a", {"event": "case_opened", "case_id": "real"})
        hub_client.close()
        # a gateway presenting the agent's client id gets its own user name as client id: the agent stays
        takeover = gateway(broker, "gw-grid-07", client_id="edge-a")
        assert takeover.logged_in()
        takeover.reading("grid-07", "gas-07", ch4_ppm=100.0)  # its own grid: allowed
        takeover.close()
        assert wait_until(lambda: len(seen) >= 2 and events)
        time.sleep(1.0)  # anything denied would have arrived by now
        assert sorted(seen) == ["gw/grid-01/sensor/gas-01/reading", "gw/grid-07/sensor/gas-07/reading"]
        assert events == [("gw/cases/district-a", "real")]  # the hub's event, and not the gateway's forgery
        assert drops == [] and agent.mqtt.connected.is_set()
        assert hub.received == []
    finally:
        gw01.close()
        gw07.close()
        viewer.loop_stop()
        viewer.disconnect()
        agent.stop()
        stop_pid(broker.proc)


def test_an_agent_rejects_the_case_event_topics_as_feeds():
    from edge.errors import Rejected
    from edge.topics import Topic

    with pytest.raises(Rejected) as err:
        Topic.parse("gw/cases/sensor/evil/reading")
    assert err.value.reason == "bad_topic" and "reserved" in err.value.detail


def test_the_shipped_acl_is_made_from_the_shipped_org_and_follows_a_changed_org(tmp_path):
    """`gridwatch broker acl` (issue 16: the ACL was written by hand for the shipped org only)."""
    import subprocess
    import sys

    from gridwatch.core.yamlconf import load
    from hub.fleet.acl import mosquitto_acl
    from hub.policy.org import OrgFile

    shipped = open("configs/mosquitto/acl", encoding="utf-8").read()
    assert mosquitto_acl(load(OrgFile, "configs/org.yaml")) == shipped
    org = tmp_path / "org.yaml"
    org.write_text("units:\n  - {id: d1, level: district}\n  - {id: s1, level: street, parent: d1}\n"
                   "  - {id: c1, level: community, parent: s1}\n  - {id: grid-31, level: grid, parent: c1}\n"
                   "  - {id: grid-32, level: grid, parent: c1}\n")
    out = subprocess.run([sys.executable, "-m", "gridwatch", "broker", "acl", str(org), "--edge", "edge-n=grid-31",
                          "--edge", "edge-s=grid-32"], capture_output=True, text=True, check=True).stdout
    for block in ("user gw-grid-31\ntopic write gw/grid-31/+/+/+\n", "user gw-grid-32\ntopic write gw/grid-32/+/+/+\n",
                  "user edge-n\ntopic read gw/grid-31/+/+/+\n", "user edge-s\ntopic read gw/grid-32/+/+/+\n"):
        assert block in out, out
    assert "gw-grid-01" not in out


def test_the_simulator_plays_through_the_shipped_broker_one_connection_per_grid(tmp_path, hub):
    """Issue 16: the simulator opened one connection per device, so under the shipped ACL (one user per grid,
    client id = user name) its devices kicked each other off. With `--username gw-{grid}` it holds one
    connection per grid, as a gateway does, and every device's readings arrive."""
    import os
    import subprocess
    import sys

    broker = start_shipped_mosquitto(tmp_path / "mq", USERS)
    agent, seen = make_agent(tmp_path / "agent", broker, hub.url)
    agent.start()
    try:
        assert agent.mqtt.wait_connected(10)
        scenario = tmp_path / "s.yaml"
        scenario.write_text(
            "name: acl\nseed: 1\nduration: 3s\ninterval: 1s\nfps: 2\ndevices:\n"
            "  - {id: gas-a1, grid: grid-01, kind: sensor, model: gas}\n"
            "  - {id: gas-a2, grid: grid-01, kind: sensor, model: gas}\n"
            "  - {id: gas-g7, grid: grid-07, kind: sensor, model: gas}\n"
            "incidents: [{id: leak, at: 0s, device: gas-a2, do: {level: 9000}}]\n")
        env = {**os.environ, "GW_GRID_01_PW": USERS["gw-grid-01"], "GW_GRID_07_PW": USERS["gw-grid-07"]}
        r = subprocess.run([sys.executable, "-m", "gridwatch", "sim", "run", str(scenario), "--broker",
                            f"{broker.host}:{broker.port}", "--username", "gw-{grid}", "--password-env",
                            "GW_{GRID}_PW"], capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        assert wait_until(lambda: {t.split("/")[3] for t in seen if t.endswith("/reading")} == {
            "gas-a1", "gas-a2", "gas-g7"})
        assert hub.wait_for(1, 15) and next(iter(hub.unique.values()))["device_id"] == "gas-a2"
        assert agent.metrics.value("gridwatch_edge_messages_total", kind="sensor") >= 6
    finally:
        agent.stop()
        stop_pid(broker.proc)
