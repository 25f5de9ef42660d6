"""`gridwatch sim load` with the whole system beside it: starts Mosquitto, `gridwatch hub serve` (SQLite)
and `gridwatch edge run` as processes, measures the load generator's ceiling on this stack (50,000
readings asked at 100,000/s, far more than it can publish), then runs the load (default 1,000 devices,
60 s, 10 gas leaks) at a fraction of that ceiling (`--load`, default 50%: a rate the publisher keeps, so
the latency is the system's and not the generator's backlog) and prints the achieved rate against the
target (within 5%) and publish→case latency p50/p95/p99. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import load_command, start_stack  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--load", type=float, default=0.5, help="the run's rate as a fraction of the ceiling")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--incidents", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        stack = start_stack(tmp, f"sqlite:///{tmp / 'hub.sqlite'}", "edge-load")
        try:
            def run(rate: float, seconds: float, incidents: int) -> dict:
                out = subprocess.run(load_command(stack, devices=args.devices, rate=rate, seconds=seconds,
                                                  incidents=incidents), env=stack.env, capture_output=True, text=True)
                return json.loads(out.stdout.strip().splitlines()[-1])
            ceiling = run(100_000, 0.5, 0)["achieved_rate"]  # 50,000 readings as fast as it can
            rep = run(args.load * ceiling, args.duration, args.incidents)
        finally:
            stack.stop()
    print(f"ceiling of the load generator on this stack: {ceiling:.0f}/s; asked {args.load:.0%} of it")
    print(f"target {rep['target_rate']:.0f}/s  achieved {rep['achieved_rate']:.0f}/s  "
          f"error {rep['rate_error']:.2%}  ({rep['published']} readings in {rep['seconds']} s, "
          f"{rep['devices']} devices)")
    print(f"incidents {rep['incidents']}, cases found {rep.get('cases_found')}: publish->case latency ms "
          f"p50 {rep.get('latency_ms_p50')}  p95 {rep.get('latency_ms_p95')}  p99 {rep.get('latency_ms_p99')}")
    print(json.dumps({"bench": "sim_load", "ceiling_rate": ceiling, **rep,
                      "ratio": round(rep["achieved_rate"] / rep["target_rate"], 3)}))


if __name__ == "__main__":
    main()
