"""Plays a scenario in real time as device gateways: one MQTT client per device (MQTT v5 with `ts`/`seq`
user properties and an LWT, or 3.1.1 with the JSON envelope), a retained `online` status at start, readings
every `interval`, frames at `fps`, incidents at their times. Records when each incident began (wall clock).
A sensor speaks the gateway kind its scenario entry names (`gateway: zigbee2mqtt`), or the one given with
`gridwatch sim run --as` (`simulators.shapes`)."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gridwatch.core import mqttlink
from gridwatch.core.config import MqttTls
from gridwatch.core.mqttlink import BrokerLink, make_client
from simulators.devices import SensorModel, rounded
from simulators.scenario import Device, Incident, Scenario, active, sensor_value
from simulators.scenes import CameraSim, HotSpot, ThermalSim, View, Walker
from simulators.shapes import hello, reading, will

logger = logging.getLogger(__name__)


@dataclass
class Connection:
    host: str = "127.0.0.1"
    port: int = 1883
    protocol: str = "v5"
    username: str | None = None
    password: str | None = None
    root: str = "gw"
    tls: MqttTls | None = None  # MQTT over TLS: the broker's CA, a client certificate when it asks for one
    password_env: str | None = None  # with a per-grid user name: the variable's name with {GRID} in it
    brokers: tuple[str, ...] = ()  # more nodes of a clustered broker (host:port), tried in turn

    @property
    def per_grid(self) -> bool:
        """`--username gw-{grid}`: one connection per grid, as a gateway holds one for all its devices (and as
        the shipped ACL grants: one user per grid, its client id its user name)."""
        return "{grid}" in (self.username or "")

    def login(self, grid: str) -> tuple[str | None, str | None]:
        """The user and password for a grid's connection (`{grid}` in the user name, `{GRID}` in the
        password's environment variable name: grid-01 -> GRID_01)."""
        if not self.per_grid:
            return self.username, self.password
        import os

        user = (self.username or "").format(grid=grid)
        password = self.password
        if self.password_env:
            password = os.environ.get(self.password_env.format(GRID=grid.upper().replace("-", "_")))
        return user, password

    def client(self, client_id: str, grid: str | None = None, start: int = 0) -> paho.Client:
        """A new client (`gridwatch.core.mqttlink.make_client`) with this connection's protocol, TLS and the
        login of `grid` (or the connection's own)."""
        user, password = self.login(grid) if grid is not None else (self.username, self.password)
        return make_client(self.link(start), client_id, username=user or "", password=password)

    def link(self, start: int = 0) -> BrokerLink:
        """The broker link; `start`: with a clustered broker, begin at that node (clients spread over the nodes,
        as behind a load balancer or round-robin DNS), then the others in turn."""
        nodes = [f"{self.host}:{self.port}", *self.brokers]
        turn = start % len(nodes)
        nodes = nodes[turn:] + nodes[:turn]
        host, _, port = nodes[0].rpartition(":")
        return BrokerLink(host=host, port=int(port), protocol="v5" if self.protocol == "v5" else "v311",
                          tls=self.tls, brokers=nodes[1:], keepalive=30)


def connect(conn: Connection, client_id: str, grid: str, will: tuple[str, bytes, bool] | None) -> paho.Client:
    """A started client the broker has accepted, or ConnectionError saying why not."""
    client = conn.client(client_id, grid)
    client.max_queued_messages_set(0)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=will[2])
    accepted, answered = threading.Event(), threading.Event()
    refusal: list[str] = []

    def on_connect(c: paho.Client, u: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            refusal.append(str(reason))
        else:
            accepted.set()
        answered.set()

    def on_disconnect(c: paho.Client, u: object, flags: object, reason: object, props: object) -> None:
        answered.set()  # closed before (or instead of) a CONNACK

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    mqttlink.connect(client, conn.link())
    client.loop_start()
    answered.wait(10)
    if not accepted.is_set():  # never play into a connection the broker did not take
        client.loop_stop()
        client.disconnect()
        why = refusal[0] if refusal else "no CONNACK (a TLS listener without --tls-ca? a wrong port?)"
        raise ConnectionError(f"{client_id}: broker {conn.host}:{conn.port} did not accept the connection: {why}")
    return client


@dataclass
class Played:
    started_wall: float = 0.0
    incident_wall: dict[str, float] = field(default_factory=dict)
    published: int = 0


class Gateway:
    """One device on the wire: its own MQTT client (with its will), or its grid's shared one."""

    def __init__(self, dev: Device, conn: Connection, client_id: str, shape: str | None = None,
                 shared: paho.Client | None = None) -> None:
        self.dev, self.conn = dev, conn
        self.v5 = conn.protocol == "v5"
        self.base = f"{conn.root}/{dev.grid}/{dev.kind}/{dev.id}"
        self.shape = (shape or dev.gateway) if dev.kind == "sensor" else "gridwatch"
        bdseq = int(time.time()) % 256
        lwt = will(self.shape, conn.root, dev.grid, dev.id, bdseq) if dev.kind == "sensor" else (
            f"{self.base}/status", b"offline", True)
        self.owns = shared is None
        self.client = shared if shared is not None else connect(conn, client_id, dev.grid, lwt)
        greet = hello(self.shape, conn.root, dev.grid, dev.id, int(time.time() * 1000), bdseq) \
            if dev.kind == "sensor" else [(f"{self.base}/status", b"online", True)]
        for topic, payload, retain in greet:
            self.publish(topic, payload, retain=retain)
        self.seq = 0

    def publish(self, topic: str, payload: bytes | str, props: Properties | None = None, retain: bool = False) -> None:
        while True:
            info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
            if info.rc != paho.MQTT_ERR_QUEUE_SIZE:  # DESIGN §10: paho's in-flight ceiling
                return
            time.sleep(0.005)

    def send(self, leaf: str, body: dict[str, Any]) -> None:
        self.seq += 1
        self.publish(f"{self.base}/{leaf}", json.dumps({"ts": int(time.time() * 1000), "seq": self.seq, **body}))

    def reading(self, metrics: dict[str, float]) -> None:
        self.seq += 1
        topic, payload, retain = reading(self.shape, self.conn.root, self.dev.grid, self.dev.id, metrics,
                                         int(time.time() * 1000), self.seq)
        self.publish(topic, payload, retain=retain)

    def frame(self, image: bytes, content_type: str) -> None:
        self.seq += 1
        ts = str(int(time.time() * 1000))
        if self.v5:
            props = Properties(PacketTypes.PUBLISH)
            props.ContentType = content_type
            props.UserProperty = [("ts", ts), ("seq", str(self.seq))]
            self.publish(f"{self.base}/frame", image, props)
        else:
            key = "jpeg_b64" if content_type == "image/jpeg" else "png_b64"
            self.publish(f"{self.base}/frame", json.dumps({"ts": int(ts), "seq": self.seq,
                                                             key: base64.b64encode(image).decode()}))

    def close(self) -> None:
        if self.owns:
            self.client.loop_stop()
            self.client.disconnect()


class Player:
    def __init__(self, sc: Scenario, conn: Connection, client_prefix: str = "sim", as_: str | None = None) -> None:
        self.sc, self.conn = sc, conn
        self.shared: dict[str, paho.Client] = {}
        if conn.per_grid:  # one connection per grid; its client id is its user name (the shipped broker's rule)
            for grid in sorted({d.grid for d in sc.devices}):
                self.shared[grid] = connect(conn, conn.login(grid)[0] or grid, grid, None)
        self.gateways = {d.id: Gateway(d, conn, f"{client_prefix}-{d.id}", as_, self.shared.get(d.grid))
                         for d in sc.devices}
        self.sensors = {d.id: SensorModel(d.model or "gas", sc.seed + i)
                        for i, d in enumerate(sc.devices) if d.kind == "sensor"}
        self.cameras = {d.id: CameraSim(sc.seed + i) for i, d in enumerate(sc.devices) if d.kind == "camera"}
        self.thermals = {d.id: ThermalSim(sc.seed + i) for i, d in enumerate(sc.devices) if d.kind == "thermal"}
        self.played = Played()

    def active(self, device: str, t: float) -> list[Incident]:
        return active(self.sc, device, t)

    def run(self, duration: float | None = None, stop: Any = None) -> Played:
        """Play until `duration` (default the scenario's; 0 = until `stop` is set) in real time."""
        duration = self.sc.duration if duration is None else duration
        step = 1.0 / self.sc.fps
        start = time.time()
        self.played.started_wall = start
        n, next_reading = 0, 0.0
        while True:
            t = n * step
            if (duration and t >= duration) or (stop is not None and stop.is_set()):
                break
            time.sleep(max(0.0, start + t - time.time()))
            readings = t >= next_reading
            if readings:
                next_reading += self.sc.interval
            for dev in self.sc.devices:
                self._device(dev, t, readings)
            n += 1
        return self.played

    def _device(self, dev: Device, t: float, readings: bool) -> None:
        incidents = self.active(dev.id, t)
        for inc in incidents:
            self.played.incident_wall.setdefault(inc.id, time.time())
        if any(i.do.silent for i in incidents):
            return
        gw = self.gateways[dev.id]
        if dev.kind == "sensor" and readings:
            model = self.sensors[dev.id]
            v = sensor_value(model, incidents, t, time.time())
            gw.reading({model.metric: rounded(model.metric, v)})
        elif dev.kind == "fence":
            for inc in self.sc.incidents:
                if inc.device == dev.id and inc.do.event and inc.at <= t < inc.at + 1.0 / self.sc.fps:
                    gw.send("event", {"zone": inc.do.zone or dev.zones[0], "event": inc.do.event})
                if inc.device == dev.id and inc.do.event and inc.for_ is not None and \
                        inc.at + inc.for_ <= t < inc.at + inc.for_ + 1.0 / self.sc.fps:
                    gw.send("event", {"zone": inc.do.zone or dev.zones[0], "event": "restore"})
        elif dev.kind == "camera":
            view = View()
            for inc in incidents:
                a = inc.do
                if a.walk:
                    view.walkers.append(Walker(tuple(a.walk), start=inc.at, speed=a.speed))
                view.covered |= a.cover
                view.blur |= a.blur
                view.turned |= a.turn
                if a.light is not None:
                    view.light = a.light
                if a.rain is not None:
                    view.rain = a.rain
            gw.frame(self.cameras[dev.id].jpeg(t, view), "image/jpeg")
        elif dev.kind == "thermal":
            spots = [HotSpot(i.do.hotspot[0], i.do.hotspot[1], start=i.at, rate=i.do.heat_rate, peak=i.do.peak_c)
                     for i in incidents if i.do.hotspot is not None]
            gw.frame(self.thermals[dev.id].png(t, spots), "image/png")
        self.played.published += 1

    def close(self) -> None:
        for gw in self.gateways.values():
            gw.close()
        for client in self.shared.values():  # a clean goodbye sends no will, as with a device's own client
            client.loop_stop()
            client.disconnect()
