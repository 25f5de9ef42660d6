"""Helpers for agent tests: configs pointing at the test services, and a gateway-like publisher."""

from __future__ import annotations

import base64
import json
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import EdgeConfig
from simulators.services import Broker

KEY = "test-edge-key"


GAS_RULES = """
rules:
  - id: gas-high
    match: {metric: ch4_ppm}
    when: {above: 5000}
    category: gas_leak
"""
"""One level rule on methane: what most agent tests need."""


def agent_config(tmp_path: Path, broker: Broker, hub_url: str, rules: str, **over: Any) -> EdgeConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    rules_file = tmp_path / "rules.yaml"
    rewrite = over.pop("rewrite_rules", True)
    if not rules_file.exists() or rewrite:
        rules_file.write_text(textwrap.dedent(rules))
    raw: dict[str, Any] = {
        "edge_id": "edge-t",
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": f"edge-{tmp_path.name}"[:60]},
        "rules": str(rules_file),
        "outbox": {"path": str(tmp_path / "outbox.sqlite"), "synchronous": "normal"},
        "hub": {"url": hub_url, "key": KEY, "key_env": None, "backoff_min": "0.2s", "backoff_max": "2s"},
        "metrics": {"port": 0},
        "rules_poll": 0.1,
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(raw.get(k), dict):
            raw[k] = {**raw[k], **v}
        else:
            raw[k] = v
    return EdgeConfig.model_validate(raw).resolved(tmp_path)


class Gateway:
    """A device gateway publishing at QoS 1 over MQTT v5."""

    def __init__(self, broker: Broker, user: str | None = None, password: str | None = None,
                 client_id: str = "", protocol: int = paho.MQTTv5) -> None:
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=protocol,
                                  client_id=client_id)
        if user:
            self.client.username_pw_set(user, password)
        self.client.max_queued_messages_set(0)
        self.connack: Any = None  # the broker's CONNACK reason code, once it answered
        self._answered = threading.Event()

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
            self.connack = reason
            self._answered.set()

        self.client.on_connect = on_connect
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def logged_in(self, timeout: float = 10) -> bool:
        """The broker accepted this login (CONNACK success), within `timeout` seconds."""
        return self._answered.wait(timeout) and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes | str | dict[str, Any], qos: int = 1, retain: bool = False) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(10)

    def reading(self, grid: str, device: str, ts: float | None = None, seq: int | None = None,
                **metrics: float) -> None:
        body: dict[str, Any] = {"ts": int((ts if ts is not None else time.time()) * 1000), "metrics": metrics}
        if seq is not None:
            body["seq"] = seq
        self.publish(f"gw/{grid}/sensor/{device}/reading", body)

    def frame(self, topic: str, image: bytes, ts: float | None, seq: int | None = None, envelope: bool = False,
              content_type: str = "image/jpeg", wait: bool = True) -> None:
        """A camera/thermal frame: image bytes with ts/seq as v5 user properties, or the JSON envelope."""
        ts_ms = None if ts is None else int(ts * 1000)
        if envelope:
            field = "jpeg_b64" if content_type == "image/jpeg" else "png_b64"
            body: dict[str, Any] = {field: base64.b64encode(image).decode()}
            if ts_ms is not None:
                body["ts"] = ts_ms
            if seq is not None:
                body["seq"] = seq
            info = self.client.publish(topic, json.dumps(body), qos=1)
        else:
            props = Properties(PacketTypes.PUBLISH)
            props.ContentType = content_type
            user = [] if ts_ms is None else [("ts", str(ts_ms))]
            if seq is not None:
                user.append(("seq", str(seq)))
            if user:
                props.UserProperty = user
            info = self.client.publish(topic, image, qos=1, properties=props)
        if wait:
            info.wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_until(pred: Any, timeout: float = 15.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


FIGURES = Path(__file__).resolve().parent.parent / "test-output" / "cluster-figures.txt"


def report(line: str) -> None:
    """Print a measured figure and keep it in test-output/cluster-figures.txt, which `make cluster-test` shows at
    the end (pytest-xdist's workers do not pass a test's printing on)."""
    print(line)
    FIGURES.parent.mkdir(exist_ok=True)
    with FIGURES.open("a", encoding="utf-8") as f:
        f.write(line.strip() + "\n")
