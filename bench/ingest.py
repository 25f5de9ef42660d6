"""Ingest benchmark: the edge agent with 100 rules against a bare paho subscriber on the same broker.

Both drain the same number of QoS 1 readings (1,000 devices, ~120-byte JSON) that were queued for them
in the broker while they were away, so publisher speed does not limit either. Then the agent takes a
paced 5,000 readings/s stream and the publish→outbox-commit latency of every reading is measured.
The mapped run drains the same readings published as Zigbee2MQTT payloads through the `zigbee2mqtt`
preset (target: >= 0.8 of the native drain); Sparkplug B DDATA decoding is timed in process, beside
the native decoder on the same readings. The NATS run drains the same count through the shipped three-node
NATS cluster (MQTT 3.1.1, every message on three nodes), beside the Mosquitto drain of the same run.
Prints a table, then one JSON line: {"bench": "ingest", ...}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from edge.agent import Agent  # noqa: E402
from edge.config import EdgeConfig  # noqa: E402
from edge.runtime import tune_gc  # noqa: E402
from simulators.services import Broker, start_mosquitto, start_nats_cluster, stop_pid  # noqa: E402

SYNC = "full"


def rules_yaml(n: int = 100, early: bool = False) -> str:
    """100 rules of mixed kinds: each device group (d0-* … d9-*) is watched by 10 of them. `early`: every other
    rule is an early-warning rule instead (forecast and deviation by turns), so half of them are; the forecast's
    10 s window makes nearly every reading a new sample and a new fit (the costly case: a 15 min window refits
    once every 7.5 s of a device's time)."""
    metrics = ["ch4_ppm", "temp_c", "water_level_m"]
    limits = {"ch4_ppm": 1100, "temp_c": 29, "water_level_m": 1.65}
    kinds = [
        lambda m: f"{{above: {limits[m]}, for: 10s, clear_below: {limits[m] * 0.9:.3f}}}",
        lambda m: f"{{rate_above: {limits[m]}, per: 60s}}",
        lambda m: f"{{avg: 5m, above: {limits[m]}}}",
        lambda m: f"{{outside: [0, {limits[m] * 1.2:.3f}]}}",
        lambda m: "{stuck_for: 1h}",
    ]
    out = ["rules:"]
    for i in range(n):
        group, metric = i % 10, metrics[(i // 10) % 3]
        if i % 25 == 24 and not (early and i % 2):
            out += [f"  - id: r{i:03d}", f"    match: {{kind: sensor, devices: ['d{group}-*']}}",
                    "    when: {stale_for: 10m}", "    category: device_offline"]
            continue
        when = kinds[(i // 10) % len(kinds)](metric)
        if early and i % 2:
            when = (f"{{forecast_above: {limits[metric]}, horizon: 10m, window: 10s, min_samples: 6, min_r2: 0.5}}"
                    if i % 4 == 1 else f"{{deviation: 4, span: 60, warmup: 0s, min_samples: 10, "
                                       f"min_spread: {limits[metric] * 0.01:.3f}}}")
        out += [f"  - id: r{i:03d}", f"    match: {{metric: {metric}, devices: ['d{group}-*']}}",
                f"    when: {when}", "    category: bench"]
    return "\n".join(out) + "\n"


def publish(broker: Broker, count: int, rate: float = 0.0, shape: str = "gridwatch", *more: str) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "publisher.py"), broker.host, str(broker.port),
                          str(count), "--rate", str(rate), "--shape", shape, *more], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bare_subscriber(broker: Broker, count: int) -> float:
    """Ceiling: a paho v5 QoS 1 subscriber that only counts, draining its queued session."""
    got = {"n": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()

    def on_message(c, u, m):  # noqa: ANN001
        if got["n"] == 0:
            got["first"] = time.perf_counter()
        got["n"] += 1
        if got["n"] >= count:
            got["last"] = time.perf_counter()
            done.set()

    def connect() -> paho.Client:
        c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-bare",
                        protocol=paho.MQTTv5)
        c.on_message = on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        props.ReceiveMaximum = 1000
        c.max_inflight_messages_set(1000)
        c.connect(broker.host, broker.port, clean_start=False, properties=props)
        return c

    c = connect()
    c.subscribe("gw/+/+/+/+", qos=1)
    c.loop(1.0)
    c.disconnect()
    publish(broker, count)
    c = connect()
    start = time.perf_counter()
    c.loop_start()
    done.wait(600)
    c.loop_stop()
    c.disconnect()
    return count / ((got["last"] or time.perf_counter()) - (got["first"] or start))


def agent_config(tmp: Path, broker: Broker, shape: str = "gridwatch", early: bool = False,
                 mqtt: dict | None = None) -> EdgeConfig:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "rules.yaml").write_text(rules_yaml(early=early))
    feeds = [{"preset": "gridwatch"}] if shape == "gridwatch" else [{"preset": shape, "grid": "grid-01"}]
    return EdgeConfig.model_validate({
        "edge_id": "bench", "mqtt": {"host": broker.host, "port": broker.port, "client_id": f"bench-{shape}",
                                     **(mqtt or {})},
        "feeds": feeds,
        "rules": str(tmp / "rules.yaml"), "outbox": {"path": str(tmp / "outbox.sqlite"), "synchronous": SYNC},
        "hub": {"url": "http://127.0.0.1:9", "backoff_min": "30s", "backoff_max": "60s"}, "metrics": None,
    }).resolved(tmp)


class Timed(Agent):
    """The agent, noting when each message's batch was committed (the outbox commit precedes the ack)."""

    def __init__(self, *a, **k) -> None:  # noqa: ANN002, ANN003
        super().__init__(*a, **k)
        self.committed: list[tuple[bytes, float]] = []
        self.count = 0

    def _committed(self, job):  # noqa: ANN001, ANN202
        super()._committed(job)  # after the outbox commit and the acknowledgements
        now = time.time()
        self.count += len(job.batch)
        self.committed += [(m.payload, now) for m in job.batch]


def agent_drain(broker: Broker, tmp: Path, count: int, shape: str = "gridwatch", early: bool = False,
                mqtt: dict | None = None, via: tuple[Broker, list[str]] | None = None) -> tuple[float, Timed, float]:
    """The agent's own rate draining `count` queued readings, the agent, and the publisher's unpaced rate.
    `mqtt`: more of the agent's mqtt section; `via`: the broker (node) and publisher arguments to publish with."""
    agent = Timed(agent_config(tmp, broker, shape, early, mqtt))
    agent.start()
    agent.mqtt.wait_connected(10)
    time.sleep(0.5)
    agent.stop()
    pub = publish(via[0], count, 0.0, shape, *via[1]) if via else publish(broker, count, shape=shape)
    agent = Timed(agent_config(tmp, broker, shape, early, mqtt))
    agent.start()
    deadline = time.monotonic() + 600
    while agent.count == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    first = time.perf_counter()
    while agent.count < count and time.monotonic() < deadline:
        time.sleep(0.005)
    if agent.count < count:
        raise SystemExit(f"agent processed {agent.count} of {count} readings in 600 s")
    elapsed = time.perf_counter() - first
    return count / elapsed, agent, pub["published"] / pub["seconds"]


def paced_latency(broker: Broker, agent: Timed, rate: float, seconds: float) -> tuple[dict, list[float]]:
    agent.committed.clear()
    base = agent.count
    count = int(rate * seconds)
    pub = publish(broker, count, rate)
    deadline = time.monotonic() + 30
    while agent.count < base + count and time.monotonic() < deadline:
        time.sleep(0.01)
    lat = sorted(now - json.loads(p)["ts"] / 1000.0 for p, now in agent.committed)
    return pub, lat


def decode_rates(n: int = 20000) -> dict[str, float]:
    """Readings/s of decoding alone (no broker, no rules): native JSON, Zigbee2MQTT mapped, Sparkplug DDATA."""
    import random

    from bench.publisher import payload, z2m_payload
    from edge.feeds import FeedSet
    from edge.message import Message
    from edge.sensors.common import Limits
    from gridwatch.core import sparkplug as spb

    cfg = EdgeConfig.model_validate({"feeds": [{"preset": "gridwatch"}, {"preset": "zigbee2mqtt", "grid": "g"},
                                               {"preset": "sparkplug-b", "grid": "g"}]})
    feeds = FeedSet(cfg.feed_specs(), Limits())
    rng = random.Random(3)
    now = int(time.time() * 1000)
    native = [payload(i, 1000, now, rng) for i in range(n)]
    z2m = [z2m_payload(i, 1000, now, rng) for i in range(n)]
    births = {}
    for d in range(100):
        births[d] = spb.encode([spb.M(name, spb.DOUBLE, 0.0, now, alias=k)
                                for k, name in enumerate(("ch4_ppm", "temp_c", "water_level_m"), 1)], now, seq=0)
    spark = [(f"spBv1.0/g/DDATA/n1/d{i % 100}", spb.encode([
        spb.M(None, spb.DOUBLE, rng.gauss(800, 60), now, alias=k) for k in (1, 2, 3)], now, seq=i % 256))
        for i in range(n)]
    out: dict[str, float] = {}
    for d, body in births.items():
        feeds.decode(Message(f"spBv1.0/g/DBIRTH/n1/d{d}", body, now / 1000))
    for name, msgs in (("native", native), ("zigbee2mqtt", z2m), ("sparkplug", spark)):
        t0 = time.perf_counter()
        for topic, body in msgs:
            feeds.decode(Message(topic, body, now / 1000 + 1))
        out[name] = n / (time.perf_counter() - t0)
    return out


NATS_USERS = {u: f"bench-{u}" for u in ("edge-a", "edge-b", "hub", "viewer", "gw-grid-01", "gw-grid-02",
                                         "gw-grid-03", "gw-grid-07")}


def nats_drain(tmp: Path, count: int) -> float:
    """The agent (v3.1.1, the shipped grants, all three nodes given) draining `count` readings a gateway of grid-01
    queued through another node of the shipped three-node cluster, every message replicated on three nodes."""
    cluster = start_nats_cluster(tmp, NATS_USERS)
    try:
        first, other = cluster.nodes[0], cluster.nodes[1]
        assert first.proc is not None and other.proc is not None
        node = Broker("127.0.0.1", first.mqtt_port, first.proc)
        mqtt = {"protocol": "v311", "username": "edge-a", "password": NATS_USERS["edge-a"], "client_id": "edge-a",
                "brokers": cluster.brokers[1:]}
        via = (Broker("127.0.0.1", other.mqtt_port, other.proc),
               ["--grid", "grid-01", "--protocol", "v311", "--username", "gw-grid-01", "--password",
                NATS_USERS["gw-grid-01"]])
        rps, agent, _ = agent_drain(node, tmp / "agent", count, mqtt=mqtt, via=via)
        agent.stop()
        return rps
    finally:
        cluster.stop()


def pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--load", type=float, default=0.5, help="the paced run's rate as a fraction of the lowest "
                    "ceiling measured in this run (publisher, bare subscriber, agent), so its latency is the "
                    "agent's and not a backlog of a publisher or an agent asked for more than they can do")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--no-nats", action="store_true", help="skip the run through a three-node NATS cluster")
    args = ap.parse_args()
    tune_gc()  # as `gridwatch edge run` does
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker = start_mosquitto(tmp / "mosquitto")
        try:
            ceiling = bare_subscriber(broker, args.count)
            rps, agent, publisher = agent_drain(broker, tmp / "agent", args.count)
            rate = args.load * min(publisher, ceiling, rps)
            pub, lat = paced_latency(broker, agent, rate, args.seconds)
            agent.stop()
            # half the rules early-warning ones, drained right after the run above (the same machine state)
            early, early_agent, _ = agent_drain(broker, tmp / "early", args.count, early=True)
            early_agent.stop()
            mapped, mapped_agent, _ = agent_drain(broker, tmp / "mapped", args.count, "zigbee2mqtt")
            mapped_agent.stop()
            dropped = broker.dropped()
        finally:
            stop_pid(broker.proc)
        nats = None if args.no_nats else nats_drain(tmp / "nats", args.count)
    ratio = rps / ceiling
    mapped_ratio = mapped / rps
    early_ratio = early / rps
    decode = decode_rates()
    print(f"{'readings':<42}{args.count:>12,}")
    print(f"{'bare paho subscriber (QoS 1), readings/s':<42}{ceiling:>12,.0f}")
    print(f"{'agent, 100 rules, readings/s':<42}{rps:>12,.0f}")
    print(f"{'ratio agent / bare':<42}{ratio:>12.2f}   (target >= 0.50)")
    achieved = pub["published"] / pub["seconds"]
    print(f"{'publisher, unpaced, readings/s':<42}{publisher:>12,.0f}")
    print(f"{'paced run: asked readings/s':<42}{rate:>12,.0f}   ({args.load:.0%} of the lowest ceiling above)")
    print(f"{'paced run: published readings/s':<42}{achieved:>12,.0f}   ({achieved / rate:.0%} of asked)")
    print(f"{'publish->outbox p50 / p99 / max, ms':<42}{pct(lat, .5):>6.1f} {pct(lat, .99):>6.1f} "
          f"{pct(lat, 1):>6.1f}   (target p99 <= 50)")
    print(f"{'agent, 50 of 100 rules early, readings/s':<42}{early:>12,.0f}   (forecast, deviation)")
    print(f"{'ratio early / level rules only':<42}{early_ratio:>12.2f}   (target >= 0.80)")
    print(f"{'agent, zigbee2mqtt preset, readings/s':<42}{mapped:>12,.0f}")
    print(f"{'ratio mapped / native':<42}{mapped_ratio:>12.2f}   (target >= 0.80)")
    print(f"{'decode only, native JSON, readings/s':<42}{decode['native']:>12,.0f}")
    print(f"{'decode only, zigbee2mqtt, readings/s':<42}{decode['zigbee2mqtt']:>12,.0f}")
    print(f"{'decode only, Sparkplug B DDATA, msgs/s':<42}{decode['sparkplug']:>12,.0f}   (3 metrics each)")
    print(f"{'broker dropped messages':<42}{dropped:>12.0f}")
    if nats is not None:
        print(f"{'agent through 3 NATS nodes (R3), readings/s':<42}{nats:>12,.0f}   (MQTT 3.1.1, JetStream)")
        print(f"{'ratio NATS cluster / one Mosquitto':<42}{nats / rps:>12.2f}")
    print(json.dumps({"bench": "ingest", "agent_rps": round(rps), "ceiling_rps": round(ceiling),
                      "ratio": round(ratio, 3), "publisher_rps": round(publisher),
                      "rate": round(rate), "achieved_rps": round(achieved), "p50_ms": round(pct(lat, .5), 1),
                      "p99_ms": round(pct(lat, .99), 1), "dropped": dropped, "mapped_rps": round(mapped),
                      "mapped_ratio": round(mapped_ratio, 3), "early_rps": round(early),
                      "early_ratio": round(early_ratio, 3),
                      "nats_rps": round(nats) if nats else None, "nats_ratio": round(nats / rps, 3) if nats else None,
                      "decode_rps": {k: round(v) for k, v in decode.items()}}))


if __name__ == "__main__":
    main()
