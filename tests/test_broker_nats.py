"""The clustered broker that ships (issue 31): three nodes of Debian's nats-server on `configs/nats/` as shipped,
MQTT 3.1.1 on JetStream. A session made right after the cluster says it is ready (the case that lost every
queued reading when clients came before JetStream's cluster had formed) survives the death of the node it was
made on; the grants refuse what the Mosquitto ACL refuses; and the edge agent, given the three nodes, moves to
the next when its node is SIGKILLed and loses no reading (its reconnect time printed)."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import Agent
from gridwatch.core.mqttlink import (
    CLUSTER_RECONNECT_MAX,
    RECONNECT_MAX,
    BrokerLink,
    Failover,
    connect,
    make_client,
)
from simulators.services import Broker, NatsCluster, NatsNode, binary, start_nats_cluster
from tests.agentkit import GAS_RULES, Gateway, agent_config, report, wait_until
from tests.needs import missing

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
USERS = {u: f"test-only-{u}-password" for u in ("edge-a", "edge-b", "hub", "viewer", "gw-grid-01", "gw-grid-02",
                                                   "gw-grid-03", "gw-grid-07")}


@pytest.fixture
def cluster(tmp_path):
    try:
        binary("nats-server", "/usr/bin/nats-server")
    except Exception:  # noqa: BLE001
        missing("nats-server is installed by make deps (Debian's nats-server)")
    c = start_nats_cluster(tmp_path / "nats", USERS)
    yield c
    c.stop()


def node_broker(node: NatsNode) -> Broker:
    assert node.proc is not None
    return Broker("127.0.0.1", node.mqtt_port, node.proc)


def gateway(node: NatsNode, user: str) -> Gateway:
    return Gateway(node_broker(node), user, USERS[user], protocol=paho.MQTTv311)


class Reader:
    """A persistent v3.1.1 session (clean session off, QoS 1) through the shipped client factory, given every
    node of the cluster: what the edge agent does."""

    def __init__(self, cluster: NatsCluster, user: str, client_id: str, topic: str, first: int = 0,
                 parse=lambda m: json.loads(m.payload)) -> None:
        nodes = cluster.brokers[first:] + cluster.brokers[:first]
        host, _, port = nodes[0].rpartition(":")
        self.link = BrokerLink(host=host, port=int(port), protocol="v311", username=user, password=USERS[user],
                               brokers=nodes[1:])
        self.client_id, self.topic, self.parse = client_id, topic, parse
        self.got: list = []
        self.subscribed = threading.Event()
        self.connected_at: list[float] = []

    def start(self) -> None:
        self.subscribed.clear()
        self.client = make_client(self.link, self.client_id, persistent=True)
        self.client.on_connect = lambda c, u, f, r, p=None: (self.connected_at.append(time.monotonic()),
                                                             c.subscribe(self.topic, qos=1))
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.got.append(self.parse(m))
        self.failover = connect(self.client, self.link)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_session_made_right_after_start_survives_the_death_of_its_node(cluster):
    reader = Reader(cluster, "edge-a", "edge-a", "gw/+/+/+/+")  # made on node 1, as soon as the cluster is ready
    reader.start()
    assert reader.subscribed.wait(15)
    reader.stop()  # away: its session queues what comes
    gw = gateway(cluster.nodes[1], "gw-grid-01")  # published through node 2
    assert gw.logged_in()
    for i in range(50):
        gw.reading("grid-01", "gas-01", seq=i, ch4_ppm=100.0 + i)  # each acknowledged (PUBACK)
    gw.client.loop_stop()
    gw.client.disconnect()
    cluster.kill(cluster.nodes[0])  # the node the session was made on: SIGKILL
    t0 = time.monotonic()
    reader.start()  # node 1 refuses: the factory moves on to node 2, then 3
    assert wait_until(lambda: len(reader.got) >= 50, timeout=30), len(reader.got)
    took = time.monotonic() - t0
    time.sleep(1.0)  # nothing more (no duplicates) arrives
    reader.stop()
    seqs = sorted(m["seq"] for m in reader.got)
    report(f"queued readings after the session's node died: {len(seqs)} of 50 in {took:.2f} s, "
          f"{reader.failover.switches} node switch(es)")
    assert seqs == list(range(50)) and reader.failover.switches >= 1


def test_the_nats_grants_refuse_what_the_mosquitto_acl_refuses(cluster):
    node = cluster.nodes[0]
    agent = Reader(cluster, "edge-a", "edge-a", "gw/+/+/+/+")
    viewer = Reader(cluster, "viewer", "viewer", "gw/cases/#", first=2)
    for r in (agent, viewer):
        r.start()
        assert r.subscribed.wait(15)
    gw01 = gateway(node, "gw-grid-01")
    try:
        assert gw01.logged_in()
        gw01.reading("grid-01", "gas-01", seq=1, ch4_ppm=100.0)  # its own grid: allowed
        for topic in ("gw/grid-07/sensor/gas-07/reading", "gw/cases/district-a"):  # another grid; a case event
            gw01.client.publish(topic, json.dumps({"ts": 1, "seq": 99, "metrics": {"ch4_ppm": 9e3},
                                                   "event": "case_opened", "case_id": "fake"}), qos=0)
        forger = gateway(cluster.nodes[1], "edge-b")  # an agent's login may only read
        assert forger.logged_in()
        forger.client.publish("gw/grid-01/sensor/forged/reading", json.dumps({"ts": 1, "seq": 98}), qos=0)
        hub = gateway(cluster.nodes[2], "hub")
        assert hub.logged_in()
        hub.publish("gw/cases/district-a", {"event": "case_opened", "case_id": "real"})
        nosy = Reader(cluster, "viewer", "viewer-2", "gw/+/+/+/+")  # a viewer may not read feeds
        nosy.start()
        assert nosy.subscribed.wait(15)
        snoop = Reader(cluster, "viewer", "viewer-3", "$MQTT/sub/#")  # nor others' deliveries (granted for QoS 1)
        snoop.start()
        assert snoop.subscribed.wait(15)
        gw01.reading("grid-01", "gas-01", seq=2, ch4_ppm=100.0)
        assert wait_until(lambda: len(agent.got) >= 2 and viewer.got, timeout=15)
        time.sleep(1.0)  # anything let through would have arrived by now
        assert sorted(m["seq"] for m in agent.got) == [1, 2]
        assert [m["case_id"] for m in viewer.got] == ["real"]
        assert nosy.got == [] and snoop.got == []
        for c in (forger, hub):
            c.client.loop_stop()
            c.client.disconnect()
        nosy.stop()
        snoop.stop()
    finally:
        gw01.client.loop_stop()
        gw01.client.disconnect()
        agent.stop()
        viewer.stop()


def test_the_agent_moves_to_the_next_node_and_loses_no_reading(cluster, tmp_path, hub):
    """The edge agent on v3.1.1, given the three nodes; the node it is on is SIGKILLed while a gateway publishes
    through another one: every reading arrives (QoS 1: what was in flight may arrive twice, as with Mosquitto;
    alerts stay exactly once in effect downstream, by alert id)."""
    first = cluster.nodes[0]
    cfg = agent_config(tmp_path / "agent", node_broker(first), hub.url, GAS_RULES, rewrite_rules=False,
                       mqtt={"protocol": "v311", "username": "edge-a", "password": USERS["edge-a"],
                             "client_id": "edge-a", "brokers": cluster.brokers[1:]})
    agent = Agent(cfg)
    seqs: list[int] = []
    deliver = agent.mqtt.deliver

    def spy(msg):
        seqs.append(json.loads(msg.payload)["seq"])
        deliver(msg)

    agent.mqtt.deliver = spy
    agent.start()
    gw = gateway(cluster.nodes[2], "gw-grid-01")
    try:
        assert agent.mqtt.wait_connected(15) and gw.logged_in()
        total = 300
        for i in range(total // 2):
            gw.reading("grid-01", "gas-01", seq=i, ch4_ppm=100.0)
        before = agent.mqtt.subscriptions  # not `reconnected`: the agent's own worker clears that event
        cluster.kill(first)
        t0 = time.monotonic()
        for i in range(total // 2, total):  # the gateway's own node may drop it while the cluster re-forms
            deadline = time.monotonic() + 30
            while True:
                try:
                    gw.reading("grid-01", "gas-01", seq=i, ch4_ppm=100.0)
                    break
                except RuntimeError:  # not connected: paho reconnects in the background
                    assert time.monotonic() < deadline, "the gateway did not get back"
                    time.sleep(0.2)
        assert wait_until(lambda: agent.mqtt.subscriptions > before, timeout=30)
        took = agent.mqtt.subscribed_at - t0
        assert wait_until(lambda: set(seqs) == set(range(total)), timeout=30), sorted(set(range(total)) - set(seqs))
        time.sleep(1.0)
        again = len(seqs) - total  # QoS 1 is at least once: what was in flight when the node died may come again
        report(f"agent reconnect after its node's SIGKILL: {took:.2f} s; readings {len(set(seqs))} of {total}, "
              f"{again} delivered twice")
        assert 0 <= again <= cfg.mqtt.receive_maximum  # at most the window in flight
        assert agent.metrics.value("gridwatch_edge_broker_moves_total") == agent.mqtt.failover.switches >= 1
    finally:
        gw.client.loop_stop()
        gw.client.disconnect()
        agent.stop()


def test_a_paho_client_is_moved_to_the_next_node_by_the_factory_hook():
    """`connect` without a broker: the hook alone, as paho calls it before each attempt."""
    link = BrokerLink(host="10.0.0.1", port=1883, protocol="v311", brokers=["10.0.0.2:1883", "10.0.0.3:1884"])
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    failover = connect(client, link)
    seen = []
    for _ in range(4):
        client._state = paho._ConnectionState.MQTT_CS_CONNECTING  # as reconnect() leaves it before the hook
        client.on_pre_connect(client, None)
        seen.append((client.host, client.port))
    assert seen == [("10.0.0.1", 1883), ("10.0.0.2", 1883), ("10.0.0.3", 1884), ("10.0.0.1", 1883)]
    assert failover.switches == 3
    with pytest.raises(ValueError, match="host:port"):
        BrokerLink(brokers=["no-port"])


def test_the_clients_of_a_dead_node_spread_over_the_others_and_wait_at_most_4_s():
    """The first node is every client's first; after it the others come in an order turned by the client id, the
    same for the same id, each node once a round; a link with several nodes caps paho's back-off at 4 s."""
    nodes = [("10.0.0.1", 1883), ("10.0.0.2", 1883), ("10.0.0.3", 1883), ("10.0.0.4", 1883)]
    orders = {}
    for cid in (f"edge-grid-{i:02d}" for i in range(12)):
        f = Failover(list(nodes), cid)
        assert f.endpoints[0] == nodes[0] and sorted(f.endpoints) == nodes
        assert Failover(list(nodes), cid).endpoints == f.endpoints
        orders[cid] = f.endpoints[1]
    assert set(orders.values()) == set(nodes[1:])  # twelve clients land on all three other nodes, not on one
    assert Failover(list(nodes)).endpoints == nodes and Failover(nodes[:2], "x").endpoints == nodes[:2]
    one = make_client(BrokerLink(host="10.0.0.1", port=1883, protocol="v311"), "a")
    many = make_client(BrokerLink(host="10.0.0.1", port=1883, protocol="v311", brokers=["10.0.0.2:1883"]), "b")
    assert (one._reconnect_max_delay, many._reconnect_max_delay) == (RECONNECT_MAX, CLUSTER_RECONNECT_MAX) == (30, 4)


def test_the_shipped_nats_users_are_made_from_the_shipped_org(tmp_path):
    """`gridwatch broker acl --nats`: configs/nats/users.conf is its output for the shipped org."""
    import subprocess
    import sys

    shipped = open("configs/nats/users.conf", encoding="utf-8").read()
    out = subprocess.run([sys.executable, "-m", "gridwatch", "broker", "acl", "--nats", "configs/org.yaml"],
                         capture_output=True, text=True, check=True).stdout
    assert out == shipped
    assert '{user: "gw-grid-07", password: $PW_GW_GRID_07' in out and '"gw.grid-07.*.*.*"' in out


def test_a_gateways_will_and_retained_status_go_through_the_cluster(cluster):
    """What the camera and device gateways rely on: a retained status and the will (LWT) that says `offline`
    when a gateway vanishes; both through NATS's MQTT 3.1.1, the will delivered by another node than the
    gateway's."""
    topic = "gw/grid-01/gateway/gw-01/status"
    gw = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311, client_id="gw-01")
    gw.username_pw_set("gw-grid-01", USERS["gw-grid-01"])
    gw.will_set(topic, "offline", qos=1, retain=True)
    gw.connect("127.0.0.1", cluster.nodes[0].mqtt_port, keepalive=5)
    gw.loop_start()
    gw.publish(topic, "online", qos=1, retain=True).wait_for_publish(10)
    watcher = Reader(cluster, "edge-a", "edge-watch", "gw/+/+/+/+", first=1,
                     parse=lambda m: (m.payload.decode(), m.retain))
    statuses = watcher.got
    watcher.start()
    assert watcher.subscribed.wait(15)
    assert wait_until(lambda: ("online", True) in statuses, timeout=10), statuses  # the retained status
    gw.loop_stop()
    gw.socket().close()  # gone without a DISCONNECT: the broker sends the will
    assert wait_until(lambda: any(p == "offline" for p, _ in statuses), timeout=20), statuses
    watcher.stop()
    late = Reader(cluster, "edge-b", "edge-late", "gw/+/+/+/+", first=2, parse=lambda m: m.payload.decode())
    late.start()
    assert wait_until(lambda: "offline" in late.got, timeout=15), late.got  # a newcomer reads the retained will
    late.stop()
