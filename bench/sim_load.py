"""`gridwatch sim load` with the whole system beside it: starts Mosquitto, `gridwatch hub serve` (SQLite)
and `gridwatch edge run` as processes, then runs the load (default 1,000 devices, 5,000 readings/s, 60 s,
10 gas leaks) and prints the achieved rate against the target (the baseline here is the target rate
itself: within 5%) and publish→case latency p50/p95/p99. Last line: one JSON object.
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
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--incidents", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        stack = start_stack(tmp, f"sqlite:///{tmp / 'hub.sqlite'}", "edge-load")
        try:
            out = subprocess.run(load_command(stack, devices=args.devices, rate=args.rate, seconds=args.duration,
                                              incidents=args.incidents),
                                 env=stack.env, capture_output=True, text=True)
            rep = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            stack.stop()
    print(f"target {rep['target_rate']:.0f}/s  achieved {rep['achieved_rate']:.0f}/s  "
          f"error {rep['rate_error']:.2%}  ({rep['published']} readings in {rep['seconds']} s, "
          f"{rep['devices']} devices)")
    print(f"incidents {rep['incidents']}, cases found {rep.get('cases_found')}: publish->case latency ms "
          f"p50 {rep.get('latency_ms_p50')}  p95 {rep.get('latency_ms_p95')}  p99 {rep.get('latency_ms_p99')}")
    print(json.dumps({"bench": "sim_load", **rep, "ratio": round(rep["achieved_rate"] / rep["target_rate"], 3)}))


if __name__ == "__main__":
    main()
