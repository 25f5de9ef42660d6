"""Soak (`make soak`): `gridwatch sim load` at 2,000 readings/s with gas leaks for 30 minutes against
Mosquitto, `gridwatch edge run` and `gridwatch hub serve` on a throwaway PostgreSQL, each its own process.
Prints incidents against cases (exactly one each), resident memory of agent and hub after warm-up and at
the end (growth < 10%), and whether the outbox drained. Exit 1 when a check fails. Last line: one JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.stack import OPS_KEY, load_command, start_stack  # noqa: E402
from simulators.services import start_postgres  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def outbox_depth(metrics_port: int) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith("gridwatch_edge_outbox_depth "):
            return float(line.split()[1])
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--incidents", type=int, default=30)
    ap.add_argument("--warmup", type=float, default=0.1, help="share of the run before memory is measured")
    args = ap.parse_args()
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp_s:
        pg = start_postgres()
        samples: list[tuple[float, float, float]] = []  # (t, agent MiB, hub MiB)
        try:
            stack = start_stack(Path(tmp_s), pg.url, "edge-soak")
            try:
                load = subprocess.Popen(load_command(stack, devices=args.devices, rate=args.rate, seconds=seconds,
                                                     incidents=args.incidents),
                                        env=stack.env, stdout=subprocess.PIPE, text=True)
                t0 = time.monotonic()
                while load.poll() is None:
                    samples.append((time.monotonic() - t0, rss_mib(stack.agent.pid), rss_mib(stack.hub.pid)))
                    time.sleep(10)
                out = load.stdout.read() if load.stdout else ""
                rep = json.loads(out.strip().splitlines()[-1])
                deadline = time.monotonic() + 120
                depth = outbox_depth(stack.metrics_port)
                while (depth is None or depth > 0) and time.monotonic() < deadline:
                    time.sleep(1)
                    depth = outbox_depth(stack.metrics_port)
                cases = httpx.get(f"{stack.hub_url}/api/v1/cases",
                                  params={"category": "gas_leak", "status": "open,accepted,resolved,on_hold,closed",
                                          "limit": 5000},
                                  headers={"Authorization": f"Bearer {OPS_KEY}"}, timeout=30).json()["cases"]
            finally:
                stack.stop()
        finally:
            pg.stop()
    warm = [s for s in samples if s[0] >= seconds * args.warmup] or samples
    base_a, base_h = warm[0][1], warm[0][2]
    end_a, end_h = samples[-1][1], samples[-1][2]
    growth_a, growth_h = end_a / base_a - 1, end_h / base_h - 1
    per_device: dict[str, int] = {}
    for c in cases:
        per_device[c["device"]] = per_device.get(c["device"], 0) + 1
    exactly_once = rep["incidents"] == len(per_device) and all(n == 1 for n in per_device.values())
    ok = exactly_once and depth == 0 and growth_a < 0.10 and growth_h < 0.10 and rep["rate_ok"]
    print(f"{'figure':<36}{'value':>16}  check")
    print(f"{'readings published':<36}{rep['published']:>16,}  at {rep['achieved_rate']:.0f}/s "
          f"(target {args.rate:.0f}/s, {'ok' if rep['rate_ok'] else 'OFF'})")
    print(f"{'incidents / gas cases (devices)':<36}{rep['incidents']:>7} / {len(cases):>3} ({len(per_device)})"
          f"  {'exactly one each' if exactly_once else 'MISMATCH'}")
    print(f"{'agent RSS after warm-up -> end, MiB':<36}{base_a:>7.1f} -> {end_a:>6.1f}  {growth_a:+.1%}")
    print(f"{'hub RSS after warm-up -> end, MiB':<36}{base_h:>7.1f} -> {end_h:>6.1f}  {growth_h:+.1%}")
    print(f"{'outbox depth after the run':<36}{depth!s:>16}  {'drained' if depth == 0 else 'NOT DRAINED'}")
    print(f"{'publish->case latency p50/p95/p99 ms':<36}{rep.get('latency_ms_p50')!s:>6} / "
          f"{rep.get('latency_ms_p95')} / {rep.get('latency_ms_p99')}")
    print(json.dumps({"bench": "soak", "minutes": args.minutes, "rate": args.rate, "published": rep["published"],
                      "achieved_rate": rep["achieved_rate"], "incidents": rep["incidents"], "cases": len(cases),
                      "exactly_once": exactly_once, "agent_rss_growth": round(growth_a, 4),
                      "hub_rss_growth": round(growth_h, 4), "outbox_depth": depth, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
