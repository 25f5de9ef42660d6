"""A fast gateway for benchmarks: publishes sensor readings at QoS 1 with back-pressure (DESIGN §10).

Run as a separate process so it does not share the GIL with what is measured:
`python bench/publisher.py HOST PORT COUNT [--rate R] [--devices N]`.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


def device_id(i: int) -> str:
    return f"d{i % 10}-{i // 10:03d}"


GRID: str | None = None  # --grid: every reading in this grid (a gateway whose broker user writes one grid)


def payload(i: int, n_devices: int, ts_ms: int, rng: random.Random) -> tuple[str, bytes]:
    dev = device_id(i % n_devices)
    body = {"ts": ts_ms, "seq": i, "metrics": {"ch4_ppm": round(rng.gauss(800, 60), 1),
                                                "temp_c": round(rng.gauss(21, 2), 2),
                                                "water_level_m": round(rng.gauss(1.4, 0.05), 3)}}
    grid = GRID or f"grid-{i % 20:02d}"
    return f"gw/{grid}/sensor/{dev}/reading", json.dumps(body, separators=(",", ":")).encode()


def z2m_payload(i: int, n_devices: int, ts_ms: int, rng: random.Random) -> tuple[str, bytes]:
    """The same readings as a Zigbee2MQTT device publishes them: one flat object, `last_seen` in ISO 8601."""
    dev = device_id(i % n_devices)
    body = {"ch4_ppm": round(rng.gauss(800, 60), 1), "temp_c": round(rng.gauss(21, 2), 2),
            "water_level_m": round(rng.gauss(1.4, 0.05), 3), "linkquality": 120,
            "last_seen": datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds")}
    return f"zigbee2mqtt/{dev}", json.dumps(body, separators=(",", ":")).encode()


SHAPES = {"gridwatch": payload, "zigbee2mqtt": z2m_payload}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--rate", type=float, default=0.0, help="messages/s; 0 = as fast as possible")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="gridwatch")
    ap.add_argument("--grid", help="every reading in this grid (default: 20 grids in turn)")
    ap.add_argument("--protocol", choices=["v5", "v311"], default="v5")
    ap.add_argument("--username")
    ap.add_argument("--password")
    args = ap.parse_args()
    global GRID
    GRID = args.grid
    make = SHAPES[args.shape]
    rng = random.Random(7)
    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                    protocol=paho.MQTTv5 if args.protocol == "v5" else paho.MQTTv311)
    if args.username:
        c.username_pw_set(args.username, args.password)
    inflight = threading.Semaphore(20000)  # back-pressure well under paho's 65,535 limit
    c.on_publish = lambda *a: inflight.release()
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect(args.host, args.port)
    c.loop_start()
    start = time.perf_counter()
    for i in range(args.count):
        if args.rate:
            due = start + i / args.rate
            while (lag := due - time.perf_counter()) > 0:
                time.sleep(min(lag, 0.002))
        inflight.acquire()
        topic, body = make(i, args.devices, int(time.time() * 1000), rng)
        while c.publish(topic, body, qos=1).rc == paho.MQTT_ERR_QUEUE_SIZE:
            time.sleep(0.001)
    for _ in range(20000):
        inflight.acquire()
    elapsed = time.perf_counter() - start
    c.loop_stop()
    c.disconnect()
    print(json.dumps({"published": args.count, "seconds": round(elapsed, 3)}), flush=True)


if __name__ == "__main__":
    main()
