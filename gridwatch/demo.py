"""`make demo`: a broker, the hub (SQLite), an edge agent and simulated gateways with scripted incidents.

Prints the API address and a live case table: clocks run, lights turn yellow and red, and unaccepted cases
escalate up the chain within a few minutes (demo limits of seconds, `configs/demo/sla.yaml`). Ctrl-C (or
--duration) stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import Agent
from edge.config import EdgeConfig
from hub.app import create_app
from hub.config import load_hub_config
from simulators.embedded_broker import EmbeddedBroker
from simulators.services import free_port, start_mosquitto, stop_pid, wait_port

ROOT = Path(__file__).resolve().parent.parent
EDGE_KEY, VIEW_KEY = "demo-edge-key", "demo-operator-key"  # DEMO keys (district operator), configs/demo/hub.yaml
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


def table(url: str) -> str:
    cases = httpx.get(f"{url}/api/v1/cases", headers={"Authorization": f"Bearer {VIEW_KEY}"}).json()["cases"]
    mark = {"green": "🟢 green", "yellow": "🟡 yellow", "red": "🔴 red"}
    lines = [f"{'case':<22}{'category':<16}{'grid':<9}{'owner':<24}{'status':<10}{'light':<11}"
             f"{'elapsed':>8}{'left':>8}{'esc':>5}"]
    for c in sorted(cases, key=lambda c: c["opened_at"]):
        clock = c.get("clock") or {}
        owner = f"{c['owner']} ({c['owner_level']})"
        cleared = " cleared" if c["cleared_at"] else ""
        lines.append(f"{c['id']:<22}{c['category']:<16}{c['grid']:<9}{owner:<24}{c['status']:<10}"
                     f"{mark.get(clock.get('light'), '-'):<11}{clock.get('elapsed_s', 0):>7.0f}s"
                     f"{clock.get('remaining_s', 0):>7.0f}s{c['escalations']:>5}{cleared}")
    return "\n".join(lines)


def serve_hub(port: int) -> tuple[uvicorn.Server, threading.Thread]:
    cfg = load_hub_config(ROOT / "configs" / "demo" / "hub.yaml")
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, name="demo-hub", daemon=True)
    thread.start()
    wait_port(port, 30)
    return server, thread


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gridwatch-demo", description=__doc__)
    ap.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0 = until Ctrl-C)")
    ap.add_argument("--port", type=int, default=8080, help="hub port (0 picks a free one)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    work = ROOT / "var" / "demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if shutil.which("mosquitto") is not None:
        broker: Any = start_mosquitto(work / "mosquitto")
        protocol, stop_broker = "v5", lambda: stop_pid(broker.proc)
    else:  # no Debian mosquitto on PATH: the embedded Python broker (MQTT 3.1.1 only)
        broker = EmbeddedBroker().start()
        protocol, stop_broker = "v311", broker.stop
        print("mosquitto not found on PATH: using the embedded amqtt broker (MQTT 3.1.1)")
    port = free_port() if args.port == 0 else args.port
    hub_url = f"http://127.0.0.1:{port}"
    server, hub_thread = serve_hub(port)
    cfg = EdgeConfig.model_validate({
        "edge_id": "edge-demo", "mqtt": {"host": broker.host, "port": broker.port, "protocol": protocol},
        "rules": str(ROOT / "configs" / "demo" / "rules.yaml"), "outbox": {"path": str(work / "outbox.sqlite")},
        "hub": {"url": hub_url, "key": EDGE_KEY, "key_env": None, "backoff_max": "5s"}, "metrics": {"port": 0},
    })
    agent = Agent(cfg)
    agent.start()
    gw = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                     protocol=paho.MQTTv5 if protocol == "v5" else paho.MQTTv311)
    gw.connect(broker.host, broker.port)
    gw.loop_start()
    print(f"hub API  {hub_url}/docs  (demo keys in configs/demo/hub.yaml; district operator: {VIEW_KEY})")
    print(f"stream   curl -N -H 'Authorization: Bearer {VIEW_KEY}' {hub_url}/api/v1/stream")
    print(f"broker   mqtt://{broker.host}:{broker.port}   agent metrics http://127.0.0.1:{agent.metrics_port}/metrics\n")
    rng, start = random.Random(1), time.monotonic()
    try:
        while not args.duration or time.monotonic() - start < args.duration:
            t = time.monotonic() - start
            for topic, body in readings(t, rng):
                gw.publish(topic, json.dumps(body), qos=1)
            if int(t) % 5 == 0:
                print(f"--- t={t:4.0f}s\n{table(hub_url)}\n", flush=True)
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        gw.loop_stop()
        gw.disconnect()
        final = table(hub_url)
        agent.stop()
        server.should_exit = True
        hub_thread.join(10)
        stop_broker()
    print(f"final:\n{final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
