"""How every MQTT client of gridwatch reaches the broker: one connection model (`BrokerLink`: host, port, more
nodes of a clustered broker, protocol, credentials, TLS, keepalive), one client factory (`make_client`: paho's
callback API v2, the protocol, the credentials from the environment, TLS, the reconnect back-off) and one way
to connect (`connect`: the first node, then, after a refusal or a lost connection, the next one in turn with
the same client id and session), used by the edge agent, the camera gateway, the hub's case-event publisher
and the simulators; and `secret`, the one reading of a secret from the environment."""

from __future__ import annotations

import logging
import os
import zlib
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import Field, field_validator

from gridwatch.core.config import MqttTls, Strict

Protocol = Literal["v5", "v311"]

RECONNECT_MIN = 1
RECONNECT_MAX = 30
"""Seconds: paho's reconnect back-off after a lost connection doubles from the first to the second."""
CLUSTER_RECONNECT_MAX = 4
"""Seconds: the back-off's ceiling when the link names several nodes. A clustered broker's other nodes are up
while one is replaced, but for the seconds its JetStream (NATS) elects new leaders they let connections wait
and then refuse them; a client that doubled its wait up to 30 s came back long after the cluster had."""
logger = logging.getLogger(__name__)


def secret(env: str | None, plain: str | None = None) -> str | None:
    """A secret: the environment variable `env` when it is set and not empty, else `plain` (the config file's
    own value, for demos only). Never logged."""
    if env:
        value = os.environ.get(env)
        if value:
            return value
    return plain


class BrokerLink(Strict):
    """Where the broker is and how to log in."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    protocol: Protocol = "v5"
    username: str | None = None
    password: str | None = Field(None, description="demo only; prefer password_env")
    password_env: str | None = Field(None, description="name of the environment variable holding the password")
    keepalive: int = Field(30, ge=5)
    tls: MqttTls | None = Field(None, description="MQTT over TLS: the broker's certificate checked against the "
                                                  "CA and its name")
    brokers: list[str] = Field(default_factory=list, description="more nodes of a clustered broker (NATS, EMQX) "
                               "as host:port, tried in turn after host:port when a connection is refused or lost; "
                               "the session (client id, clean session off) goes along")

    @field_validator("brokers")
    @classmethod
    def _nodes(cls, v: list[str]) -> list[str]:
        for node in v:
            host, _, port = node.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{node!r} is not host:port")
        return v

    def endpoints(self) -> list[tuple[str, int]]:
        """host:port first, then the other nodes."""
        more = [(h, int(p)) for h, _, p in (n.rpartition(":") for n in self.brokers)]
        return [(self.host, self.port), *[e for e in more if e != (self.host, self.port)]]

    def secret(self) -> str | None:
        return secret(self.password_env, self.password)


def make_client(link: BrokerLink, client_id: str = "", *, persistent: bool = False, manual_ack: bool = False,
                username: str | None = None, password: str | None = None) -> paho.Client:
    """A paho client for `link`, not yet connected. `persistent`: a v3.1.1 session survives the connection
    (clean session off; a v5 client asks for it with clean start off and a session expiry when it connects).
    `username`/`password` stand in for the link's own (a simulator logs in per grid)."""
    v5 = link.protocol == "v5"
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5 if v5 else paho.MQTTv311, manual_ack=manual_ack,
                         clean_session=None if v5 else not persistent)
    user = username if username is not None else link.username
    if user:
        client.username_pw_set(user, password if username is not None else link.secret())
    if link.tls is not None:  # certificates checked against the CA, the name against the certificate
        client.tls_set_context(link.tls.context())
    client.reconnect_delay_set(min_delay=RECONNECT_MIN,
                               max_delay=CLUSTER_RECONNECT_MAX if link.brokers else RECONNECT_MAX)
    return client


class Failover:
    """paho's `on_pre_connect` hook: the first attempt goes to the first node, every later one (after a refusal,
    a failed attempt or a lost connection) to the next node in turn, so a dead node costs one back-off step. A
    clustered broker keeps the session on every node. `switches` counts the moves.

    `spread` (the client id) orders the other nodes differently for different clients, so the clients of a dead
    node do not all land on the same next one at once (NATS sets up MQTT sessions one at a time per account:
    six clients arriving together on one node during its leader elections waited up to 16 s)."""

    def __init__(self, endpoints: list[tuple[str, int]], spread: str = "") -> None:
        if len(endpoints) > 2 and spread:
            first, rest = endpoints[0], endpoints[1:]
            turn = zlib.crc32(spread.encode()) % len(rest)
            endpoints = [first, *rest[turn:], *rest[:turn]]
        self.endpoints = endpoints
        self.index = 0
        self.attempts = 0
        self.switches = 0

    @property
    def current(self) -> tuple[str, int]:
        return self.endpoints[self.index]

    def __call__(self, client: paho.Client, userdata: Any) -> None:
        self.attempts += 1
        if self.attempts == 1 or len(self.endpoints) == 1:
            return
        self.index = (self.index + 1) % len(self.endpoints)
        self.switches += 1
        # paho calls this hook inside reconnect(), after marking the client connecting, so its `host`/`port`
        # setters refuse; the attributes they guard are what the next socket is opened to (paho 2.x;
        # tests/test_broker_nats.py shows a client moving node to node)
        client._host, client._port = self.current
        logger.info("mqtt: trying broker node %s:%d", *self.current)


def connect(client: paho.Client, link: BrokerLink, **kwargs: Any) -> Failover:
    """Connect `client` in the background (paho's loop, started by the caller) to the link's first node, moving to
    the next one in turn whenever a connection attempt fails or a connection is lost. `kwargs` go to paho's
    `connect_async` (clean_start, properties for v5)."""
    failover = Failover(link.endpoints(), client._client_id.decode(errors="replace"))
    host, port = failover.current
    client.on_pre_connect = failover
    client.connect_async(host, port, keepalive=link.keepalive, **kwargs)
    return failover

