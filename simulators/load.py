"""`gridwatch sim load`: many sensor devices publishing at a steady rate, with gas leaks injected at
intervals; reports the achieved rate and, when a hub is given, publish→case latency of the incidents.

The readings go out through a few QoS 1 connections (DESIGN §10: back-pressure below paho's in-flight
ceiling) from a paced loop; each incident is a reading far above the gas threshold on a device whose
baseline is normal, and its case is looked up on the hub by device."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import paho.mqtt.client as paho

from gridwatch.core import mqttlink
from simulators.player import Connection


@dataclass
class LoadSpec:
    devices: int = 1000
    rate: float = 5000.0
    duration: float = 60.0
    incidents: int = 10
    hub: str | None = None
    key: str | None = None
    settle: float = 30.0
    connections: int = 2
    grids: tuple[str, ...] = ("grid-01", "grid-02", "grid-03", "grid-07")
    leak_ppm: float = 9000.0


def _client(conn: Connection, i: int, inflight: threading.Semaphore, grid: str | None = None) -> paho.Client:
    """A paced publishing connection; with a per-grid login (`--username gw-{grid}`) that grid's, its client id
    its user name as the shipped grants expect."""
    if grid is not None:  # the grids' connections spread over a clustered broker's nodes
        c = conn.client(conn.login(grid)[0] or f"sim-load-{grid}", grid, start=i)
    else:
        c = conn.client(f"sim-load-{i}-{time.time_ns()}")
    c.on_publish = lambda *a: inflight.release()
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    mqttlink.connect(c, conn.link(i if grid is not None else 0))
    c.loop_start()
    return c


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def run_load(spec: LoadSpec, conn: Connection) -> dict[str, Any]:
    rng = random.Random(11)
    inflight = threading.Semaphore(20000)
    devices = [(spec.grids[i % len(spec.grids)], f"load-{i:05d}") for i in range(spec.devices)]
    by_grid: dict[str, paho.Client] = {}
    if conn.per_grid:  # one connection per grid, each writing only its own grid's topics
        by_grid = {g: _client(conn, i, inflight, g) for i, g in enumerate(spec.grids)}
        clients = list(by_grid.values())
    else:
        clients = [_client(conn, i, inflight) for i in range(spec.connections)]
    total = int(spec.rate * spec.duration)
    every = total // (spec.incidents + 1) if spec.incidents else 0
    injected: dict[str, float] = {}  # device -> wall time of the leak reading
    due_incidents = 0
    start = time.perf_counter()
    wall0 = time.time()
    for n in range(total):
        due = start + n / spec.rate
        while (lag := due - time.perf_counter()) > 0:
            time.sleep(min(lag, 0.002))
        grid, dev = devices[n % spec.devices]
        ppm = round(rng.gauss(800, 40), 1)
        if every and n and n % every == 0:
            due_incidents += 1
        # an incident due goes to the next device that has none yet
        if len(injected) < min(due_incidents, spec.incidents) and dev not in injected:
            injected[dev] = time.time()
        if dev in injected:  # a leak goes on once it started, so hold times are met
            ppm = spec.leak_ppm
        body = json.dumps({"ts": int(time.time() * 1000), "seq": n, "metrics": {"ch4_ppm": ppm}},
                          separators=(",", ":"))
        inflight.acquire()
        c = by_grid[grid] if by_grid else clients[n % len(clients)]
        # a lost connection keeps the reading (paho sends it on the next node, as a gateway holds its readings)
        while c.publish(f"{conn.root}/{grid}/sensor/{dev}/reading", body, qos=1).rc == paho.MQTT_ERR_QUEUE_SIZE:
            time.sleep(0.001)
    published_in = time.perf_counter() - start
    for _ in range(20000):  # every publish acknowledged by the broker
        inflight.acquire()
    for c in clients:
        c.loop_stop()
        c.disconnect()
    achieved = total / published_in
    rep: dict[str, Any] = {"devices": spec.devices, "target_rate": spec.rate, "published": total,
                           "seconds": round(published_in, 2), "achieved_rate": round(achieved, 1),
                           "rate_error": round(abs(achieved - spec.rate) / spec.rate, 4),
                           "rate_ok": abs(achieved - spec.rate) / spec.rate <= 0.05,
                           "incidents": len(injected)}
    if spec.hub and spec.key and injected:
        rep.update(_latencies(spec, injected, wall0))
    return rep


def _latencies(spec: LoadSpec, injected: dict[str, float], since: float) -> dict[str, Any]:
    http = httpx.Client(base_url=spec.hub or "", headers={"Authorization": f"Bearer {spec.key}"}, timeout=10)
    deadline = time.monotonic() + spec.settle
    opened: dict[str, float] = {}
    while time.monotonic() < deadline and len(opened) < len(injected):
        for c in http.get("/api/v1/cases", params={"category": "gas_leak", "limit": 5000}).json()["cases"]:
            at = datetime.fromisoformat(c["opened_at"].replace("Z", "+00:00")).timestamp()
            if c["device"] in injected and at >= since:  # a case left open by an earlier run is not this one
                opened[c["device"]] = at
        time.sleep(0.5)
    lat = [opened[d] - injected[d] for d in opened]
    ms = [round(x * 1000, 1) for x in lat]
    return {"cases_found": len(opened), "latency_ms_p50": percentile(ms, 0.5),
            "latency_ms_p95": percentile(ms, 0.95), "latency_ms_p99": percentile(ms, 0.99)}
