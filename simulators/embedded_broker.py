"""The demo's fallback broker when Debian's mosquitto is not installed: amqtt in a background thread.

amqtt 0.12 speaks MQTT 3.1.1 only (DESIGN §3), so every client of it must connect with `v311`. It is
for the demo only: it is slow and never delivers `$share/...` subscriptions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

from simulators.services import free_port, wait_port


@dataclass
class EmbeddedBroker:
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    protocol: str = "v311"

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-amqtt", daemon=True)

    def start(self) -> EmbeddedBroker:
        self._thread.start()
        wait_port(self.port, 20)
        return self

    def _run(self) -> None:
        from amqtt.broker import Broker

        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.CRITICAL)  # chatty about normal disconnects
        asyncio.set_event_loop(self._loop)
        config = {"listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                  "sys_interval": 60, "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
                  "topic-check": {"enabled": False}}
        self._broker = Broker(config, loop=self._loop)
        self._loop.run_until_complete(self._broker.start())
        self._loop.run_forever()
        self._loop.run_until_complete(self._broker.shutdown())
        self._stopped.set()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._stopped.wait(10)
