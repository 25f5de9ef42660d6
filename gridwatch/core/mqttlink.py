"""How every MQTT client of gridwatch reaches the broker: one connection model (`BrokerLink`: host, port,
protocol, credentials, TLS, keepalive) and one client factory (`make_client`: paho's callback API v2, the
protocol, the credentials from the environment, TLS, the reconnect back-off), used by the edge agent, the
camera gateway, the hub's case-event publisher and the simulators; and `secret`, the one reading of a secret
from the environment."""

from __future__ import annotations

import os
from typing import Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import Field

from gridwatch.core.config import MqttTls, Strict

Protocol = Literal["v5", "v311"]

RECONNECT_MIN = 1
RECONNECT_MAX = 30
"""Seconds: paho's reconnect back-off after a lost connection doubles from the first to the second."""


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
    client.reconnect_delay_set(min_delay=RECONNECT_MIN, max_delay=RECONNECT_MAX)
    return client
