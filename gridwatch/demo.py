"""`make demo`: a broker, the hub (SQLite), an edge agent and the demo scenario's simulated gateways
(sensors, a fence, cameras, a thermal camera; simulators/scenarios/demo.yaml).

Prints the API address and a live case table: clocks run, lights turn yellow and red, and unaccepted cases
escalate up the chain within a few minutes (demo limits of seconds, `configs/demo/sla.yaml`). Ctrl-C (or
--duration) stops everything it started.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from edge.agent import Agent
from edge.config import EdgeConfig
from gridwatch.ruletools import EdgeRuleTools
from hub.boot.app import create_app
from hub.boot.check import check_hub
from hub.config import load_hub_config
from simulators.embedded_broker import EmbeddedBroker
from simulators.player import Connection, Player
from simulators.scenario import load_scenario
from simulators.services import free_port, start_mosquitto, stop_pid, wait_port

ROOT = Path(__file__).resolve().parent.parent
EDGE_KEY, VIEW_KEY = "demo-edge-key", "demo-operator-key"  # DEMO keys (district operator), configs/demo/hub.yaml
ADMIN_KEY = "demo-admin-key"  # DEMO key, configs/demo/hub.yaml
# DEMO accounts made at start through the admin API: a grid worker of grid-01 and a district dispatcher
DEMO_PEOPLE = (("wangge01", "张网格", "grid-01"), ("jiedao01", "王街道", "street-1"), ("ranqi01", "赵燃气", "dept-gas"),
               ("zhihui", "李指挥", "district-a"))
DEMO_PASSWORD = "Demo-pw-2026!"


def demo_people(hub_url: str) -> str:
    """The demo's people (made once; a second start finds them there), for the board's sign-in."""
    import httpx

    for username, name, unit in DEMO_PEOPLE:
        httpx.post(f"{hub_url}/api/v1/users", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10,
                   json={"username": username, "name": name, "unit": unit, "role": "operator",
                         "password": DEMO_PASSWORD})
    return ", ".join(f"{u}/{DEMO_PASSWORD}" for u, _, _ in DEMO_PEOPLE)
SCENARIO = ROOT / "simulators" / "scenarios" / "demo.yaml"
DEVICES = ROOT / "configs" / "demo" / "devices.yaml"


def register_devices(hub_url: str) -> int:
    """The demo's registry (names, addresses, coordinates) through the API, before any reading arrives, so
    the cases it opens carry their places (the board's place column, the map)."""
    import yaml

    devices = yaml.safe_load(DEVICES.read_text(encoding="utf-8"))["devices"]
    for d in devices:
        r = httpx.put(f"{hub_url}/api/v1/devices/{d['id']}", json=d, timeout=10,
                      headers={"Authorization": f"Bearer {VIEW_KEY}"})
        r.raise_for_status()
    return len(devices)


def table(url: str) -> str:
    cases = httpx.get(f"{url}/api/v1/cases", headers={"Authorization": f"Bearer {VIEW_KEY}"}).json()["cases"]
    mark = {"green": "🟢 green", "yellow": "🟡 yellow", "red": "🔴 red"}
    if sys.stdout.isatty():  # a terminal: the light's colour on the whole row, like the board
        colour = {"green": "\033[32m", "yellow": "\033[33m", "red": "\033[1;31m"}
    else:
        colour = {}
    lines = [f"{'case':<22}{'category':<16}{'grid':<9}{'owner':<28}{'status':<10}{'light':<11}"
             f"{'elapsed':>8}{'left':>8}{'esc':>5}  place"]
    for c in sorted(cases, key=lambda c: c["opened_at"]):
        clock: dict[str, Any] = c.get("clock") or {}
        owner = f"{c['owner']} ({c['owner_level']})"
        cleared = " cleared" if c["cleared_at"] else ""
        row = (f"{c['id']:<22}{c['category']:<16}{c['grid']:<9}{owner:<28}{c['status']:<10}"
               f"{mark.get(str(clock.get('light')), '-'):<11}{clock.get('elapsed_s', 0):>7.0f}s"
               f"{clock.get('remaining_s', 0):>7.0f}s{c['escalations']:>5}  {(c.get('place') or {}).get('name') or '-'}"
               f"{cleared}")
        on = colour.get(str(clock.get("light")), "")
        lines.append(f"{on}{row}\033[0m" if on else row)
    return "\n".join(lines)


def serve_hub(port: int) -> tuple[uvicorn.Server, threading.Thread]:
    cfg = load_hub_config(ROOT / "configs" / "demo" / "hub.yaml")
    app = create_app(cfg, rule_tools=EdgeRuleTools())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
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
    found, _ = check_hub(ROOT / "configs" / "demo" / "hub.yaml", date.today())  # what `gridwatch hub check` says
    if found.errors:
        print("\n".join(found.errors), file=sys.stderr)
        return 1
    for w in found.warnings:
        if "is the demo key" not in w:  # the demo's keys are the point here
            print(f"warning: {w}")
    stop_broker: Callable[[], object]
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
    register_devices(hub_url)
    cfg = EdgeConfig.model_validate({
        "edge_id": "edge-demo", "mqtt": {"host": broker.host, "port": broker.port, "protocol": protocol},
        "rules": str(ROOT / "configs" / "demo" / "rules.yaml"), "outbox": {"path": str(work / "outbox.sqlite")},
        "hub": {"url": hub_url, "key": EDGE_KEY, "key_env": None, "backoff_max": "5s"}, "metrics": {"port": 0},
    })
    agent = Agent(cfg)
    agent.start()
    agent.mqtt.wait_connected(10)
    player = Player(load_scenario(SCENARIO), Connection(broker.host, broker.port, protocol), "demo")
    stop = threading.Event()
    playing = threading.Thread(target=player.run, args=(0, stop), name="demo-gateways", daemon=True)
    playing.start()
    people = demo_people(hub_url)
    print(f"board    {hub_url}/  (key: {VIEW_KEY}; or sign in as {people})")
    print(f"hub API  {hub_url}/docs  (demo keys in configs/demo/hub.yaml; district operator: {VIEW_KEY})")
    print(f"stream   curl -N -H 'Authorization: Bearer {VIEW_KEY}' {hub_url}/api/v1/stream")
    print(f"broker   mqtt://{broker.host}:{broker.port}   agent metrics http://127.0.0.1:{agent.metrics_port}/metrics\n")
    start = time.monotonic()
    try:
        while not args.duration or time.monotonic() - start < args.duration:
            t = time.monotonic() - start
            print(f"--- t={t:4.0f}s\n{table(hub_url)}\n", flush=True)
            time.sleep(max(0.0, 5.0 - (time.monotonic() - start - t)))
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        playing.join(10)
        player.close()
        final = table(hub_url)
        agent.stop()
        server.should_exit = True
        hub_thread.join(10)
        stop_broker()
    print(f"final:\n{final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
