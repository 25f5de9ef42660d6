"""`make demo`: a broker, an edge agent and simulated gateways with scripted incidents, on this machine.

Until the hub lands (its own issue), the demo shows the edge half: the alerts the agent raised, held
durably in its outbox for the hub. Ctrl-C (or --duration) stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import Agent
from edge.config import EdgeConfig
from simulators.services import start_mosquitto, stop_pid

ROOT = Path(__file__).resolve().parent.parent
SENSORS = [("grid-01", "gas-01"), ("grid-01", "gas-02"), ("grid-02", "gas-03"), ("grid-02", "water-01")]


def readings(t: float, rng: random.Random) -> list[tuple[str, dict]]:
    """One round of gateway messages at demo time t (seconds): a gas leak at 10 s, rising water at 20 s,
    gas-02 going silent at 15 s, a fence breach at 25 s."""
    now_ms = int(time.time() * 1000)
    out = []
    for grid, dev in SENSORS:
        if dev == "gas-02" and t >= 15:
            continue
        if dev.startswith("gas"):
            leak = dev == "gas-03" and 10 <= t < 40
            metrics = {"ch4_ppm": round((6200.0 if leak else 800.0) + rng.gauss(0, 40), 1)}
        else:
            level = 1.2 + (max(0.0, t - 20) * 0.1 if t < 40 else 2.0)
            metrics = {"water_level_m": round(level + rng.gauss(0, 0.005), 3)}
        out.append((f"gw/{grid}/sensor/{dev}/reading", {"ts": now_ms, "metrics": metrics}))
    if 25 <= t < 26:
        out.append(("gw/grid-03/fence/fence-01/event", {"ts": now_ms, "zone": "north", "event": "breach"}))
    return out


def table(outbox: Path) -> str:
    with sqlite3.connect(outbox) as c:
        rows = [json.loads(b) for (b,) in c.execute("SELECT body FROM outbox ORDER BY seq")]
    lines = [f"{'observed (UTC)':<25}{'state':<10}{'rule':<16}{'grid':<9}{'device':<10}message"]
    lines += [f"{a['observed_at']:<25}{a['state']:<10}{a['rule_id']:<16}{a['grid_id']:<9}{a['device_id']:<10}"
              f"{a['message']}" for a in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gridwatch-demo", description=__doc__)
    ap.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0 = until Ctrl-C)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        print("mosquitto is not installed: run `make deps` (apt-get install mosquitto)", file=sys.stderr)
        return 1
    work = ROOT / "var" / "demo"
    shutil.rmtree(work, ignore_errors=True)
    broker = start_mosquitto(work / "mosquitto")
    cfg = EdgeConfig.model_validate({
        "edge_id": "edge-demo", "mqtt": {"host": broker.host, "port": broker.port},
        "rules": str(ROOT / "configs" / "demo" / "rules.yaml"), "outbox": {"path": str(work / "outbox.sqlite")},
        "hub": {"url": "http://127.0.0.1:8080", "backoff_max": "10s"}, "metrics": {"port": 0},
    })
    agent = Agent(cfg)
    agent.start()
    gw = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    gw.connect(broker.host, broker.port)
    gw.loop_start()
    print(f"broker mqtt://{broker.host}:{broker.port}  agent metrics http://127.0.0.1:{agent.metrics_port}/metrics")
    print("the hub (cases, clocks, lights, board) is not built yet: alerts wait in the agent's outbox\n")
    rng, start = random.Random(1), time.monotonic()
    try:
        while not args.duration or time.monotonic() - start < args.duration:
            t = time.monotonic() - start
            for topic, body in readings(t, rng):
                gw.publish(topic, json.dumps(body), qos=1)
            if int(t) % 5 == 0:
                print(f"--- t={t:4.0f}s, alerts raised so far:\n{table(work / 'outbox.sqlite')}\n", flush=True)
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        gw.loop_stop()
        gw.disconnect()
        agent.stop()
        stop_pid(broker.proc)
    print(f"final:\n{table(work / 'outbox.sqlite')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
