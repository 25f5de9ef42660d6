"""The whole system as processes for the load benchmarks (`sim_load.py`, `soak.py`): Mosquitto, `gridwatch
hub serve` on the database given and `gridwatch edge run` with one gas rule, on loopback ports."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from hub.config import hash_key
from simulators.services import Broker, free_port, start_mosquitto, stop_pid, wait_port

ROOT = Path(__file__).resolve().parent.parent
RULES = """
rules:
  - id: gas-high
    match: {kind: sensor, metric: ch4_ppm}
    when: {above: 5000, clear_below: 4000}
    severity: critical
    category: gas_leak
"""
EDGE_KEY, OPS_KEY = "bench-edge-key", "bench-ops-key"  # bench-only keys
GW = [sys.executable, "-m", "gridwatch"]


@dataclass
class Stack:
    broker: Broker
    hub: subprocess.Popen[bytes]
    agent: subprocess.Popen[bytes]
    port: int  # the hub's
    metrics_port: int  # the agent's
    env: dict[str, str]  # with the keys in GRIDWATCH_HUB_KEY (operator) and BENCH_EDGE_KEY

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_pid(self.agent)
        stop_pid(self.hub)
        stop_pid(self.broker.proc)


def start_stack(tmp: Path, database: str, edge_id: str) -> Stack:
    """Start the three processes and wait until hub and agent listen."""
    broker = start_mosquitto(tmp / "mosquitto")
    port, mport = free_port(), free_port()
    (tmp / "rules.yaml").write_text(RULES)
    (tmp / "hub.yaml").write_text(yaml.safe_dump({
        "database": database, "listen": {"host": "127.0.0.1", "port": port},
        "org": str(ROOT / "configs/org.yaml"), "sla": str(ROOT / "configs/sla.yaml"),
        "calendars": str(ROOT / "configs/calendars"),
        "keys": [{"name": "edge", "role": "edge", "hash": hash_key(EDGE_KEY)},
                 {"name": "ops", "role": "operator", "unit": "district-a", "hash": hash_key(OPS_KEY)}]}))
    (tmp / "edge.yaml").write_text(yaml.safe_dump({
        "edge_id": edge_id, "mqtt": {"host": broker.host, "port": broker.port, "client_id": edge_id},
        "rules": str(tmp / "rules.yaml"), "outbox": {"path": str(tmp / "outbox.sqlite")},
        "hub": {"url": f"http://127.0.0.1:{port}", "key_env": "BENCH_EDGE_KEY"},
        "metrics": {"host": "127.0.0.1", "port": mport}}))
    env = {**os.environ, "BENCH_EDGE_KEY": EDGE_KEY, "GRIDWATCH_HUB_KEY": OPS_KEY}
    hub = subprocess.Popen([*GW, "hub", "serve", "-c", str(tmp / "hub.yaml")], env=env)
    agent = subprocess.Popen([*GW, "edge", "run", "-c", str(tmp / "edge.yaml")], env=env)
    stack = Stack(broker, hub, agent, port, mport, env)
    try:
        wait_port(port, 30, hub)
        wait_port(mport, 30, agent)
    except Exception:
        stack.stop()
        raise
    return stack


def load_command(stack: Stack, *, devices: int, rate: float, seconds: float, incidents: int) -> list[str]:
    """`gridwatch sim load` against the stack, with the operator key for publish→case latencies."""
    return [*GW, "sim", "load", "--devices", str(devices), "--rate", str(rate), "--duration", str(seconds),
            "--incidents", str(incidents), "--broker", f"{stack.broker.host}:{stack.broker.port}",
            "--hub", stack.hub_url, "--key-env", "GRIDWATCH_HUB_KEY"]
