"""`gridwatch sim load` with the whole system beside it: starts Mosquitto, `gridwatch hub serve` (SQLite)
and `gridwatch edge run` as processes, then runs the load (default 1,000 devices, 5,000 readings/s, 60 s,
10 gas leaks) and prints the achieved rate against the target (the baseline here is the target rate
itself: within 5%) and publish→case latency p50/p95/p99. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from hub.config import hash_key  # noqa: E402
from simulators.services import free_port, start_mosquitto, stop_pid, wait_port  # noqa: E402

RULES = """
rules:
  - id: gas-high
    match: {kind: sensor, metric: ch4_ppm}
    when: {above: 5000, clear_below: 4000}
    severity: critical
    category: gas_leak
"""
EDGE_KEY, OPS_KEY = "bench-edge-key", "bench-ops-key"  # bench-only keys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--incidents", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        broker = start_mosquitto(tmp / "mosquitto")
        port = free_port()
        (tmp / "rules.yaml").write_text(RULES)
        (tmp / "hub.yaml").write_text(yaml.safe_dump({
            "database": f"sqlite:///{tmp / 'hub.sqlite'}", "listen": {"host": "127.0.0.1", "port": port},
            "org": str(ROOT / "configs/org.yaml"), "sla": str(ROOT / "configs/sla.yaml"),
            "calendars": str(ROOT / "configs/calendars"),
            "keys": [{"name": "edge", "role": "edge", "hash": hash_key(EDGE_KEY)},
                     {"name": "ops", "role": "operator", "unit": "district-a", "hash": hash_key(OPS_KEY)}]}))
        (tmp / "edge.yaml").write_text(yaml.safe_dump({
            "edge_id": "edge-load", "mqtt": {"host": broker.host, "port": broker.port, "client_id": "edge-load"},
            "rules": str(tmp / "rules.yaml"), "outbox": {"path": str(tmp / "outbox.sqlite")},
            "hub": {"url": f"http://127.0.0.1:{port}", "key_env": "LOAD_EDGE_KEY"}, "metrics": {"port": 0}}))
        env = {**os.environ, "LOAD_EDGE_KEY": EDGE_KEY, "GRIDWATCH_HUB_KEY": OPS_KEY}
        gw = [sys.executable, "-m", "gridwatch"]
        hub = subprocess.Popen([*gw, "hub", "serve", "-c", str(tmp / "hub.yaml")], env=env)
        agent = subprocess.Popen([*gw, "edge", "run", "-c", str(tmp / "edge.yaml")], env=env)
        try:
            wait_port(port, 30, hub)
            out = subprocess.run([*gw, "sim", "load", "--devices", str(args.devices), "--rate", str(args.rate),
                                  "--duration", str(args.duration), "--incidents", str(args.incidents),
                                  "--broker", f"{broker.host}:{broker.port}", "--hub", f"http://127.0.0.1:{port}"],
                                 env=env, capture_output=True, text=True)
            rep = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            stop_pid(agent)
            stop_pid(hub)
            stop_pid(broker.proc)
    print(f"target {rep['target_rate']:.0f}/s  achieved {rep['achieved_rate']:.0f}/s  "
          f"error {rep['rate_error']:.2%}  ({rep['published']} readings in {rep['seconds']} s, "
          f"{rep['devices']} devices)")
    print(f"incidents {rep['incidents']}, cases found {rep.get('cases_found')}: publish->case latency ms "
          f"p50 {rep.get('latency_ms_p50')}  p95 {rep.get('latency_ms_p95')}  p99 {rep.get('latency_ms_p99')}")
    print(json.dumps({"bench": "sim_load", **rep, "ratio": round(rep["achieved_rate"] / rep["target_rate"], 3)}))


if __name__ == "__main__":
    main()
