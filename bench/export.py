"""Case export benchmark (issue 14): 100,000 cases exported as CSV and XLSX by a real hub
(`gridwatch hub serve`, SQLite), streamed to the client while the hub's resident memory is sampled every
20 ms. Baseline in the same run: the hub's RSS at rest, and one `GET /api/v1/cases?limit=5000` (the
largest page, which the hub holds whole). Memory that stays flat while 100,000 rows pass means the export
streams; a peak that grew with the data would mean it held them.

Prints a table, then one JSON line: {"bench": "export", ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.hubkit import EDGE, OPS, Hub  # noqa: E402

SLA = """
policies:
  - id: all
    calendar: 24x7
    limits: {accept: 2h, resolve: 8h, feedback: 8h}
"""
GRIDS = ["grid-01", "grid-02", "grid-03", "grid-07"]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    """The peak RSS of a process while a block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def __enter__(self) -> Sampler:
        self.peak = rss_mb(self.pid)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


def fill(hub: Hub, n: int) -> float:
    now = datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {EDGE}"}) as c:
        for start in range(0, n, 500):
            batch = [{"alert_id": f"x{i:07d}", "state": "firing", "rule_id": "r", "edge_id": "bench",
                      "device_id": f"dev-{i:06d}", "grid_id": GRIDS[i % 4], "kind": "sensor",
                      "category": "gas_leak" if i % 3 else "flood", "severity": "major", "started_at": now,
                      "observed_at": now, "value": float(i), "message": f"读数 {i} 超过阈值",
                      "labels": {}, "evidence": {},
                      "place": {"name": f"{i}号井", "address": "西门菜市场北侧", "lat": 31.2, "lon": 121.4}}
                     for i in range(start, min(n, start + 500))]
            while True:
                r = c.post(f"{hub.url}/api/v1/alerts", json={"alerts": batch})
                if r.status_code != 429:
                    r.raise_for_status()
                    break
                time.sleep(float(r.headers.get("Retry-After", "1")))
    return time.perf_counter() - t0


def measure(hub: Hub, path: str) -> tuple[float, float, int, float]:
    """(peak RSS MB, seconds, bytes, RSS at start) of one streamed GET."""
    assert hub.proc is not None
    pid = hub.proc.pid
    start = rss_mb(pid)
    size = 0
    t0 = time.perf_counter()
    with Sampler(pid) as s, httpx.stream("GET", f"{hub.url}{path}", headers={"Authorization": f"Bearer {OPS}"},
                                         timeout=600) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes():
            size += len(chunk)
    return s.peak, time.perf_counter() - t0, size, start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hub = Hub(Path(tmp), SLA, limits={"intake_rate": 100000, "intake_burst": 100000}).start()
        try:
            took = fill(hub, args.cases)
            hub.stop()
            hub.start()  # a fresh process: its memory says what the export costs, not what the intake left
            assert hub.proc is not None
            httpx.get(f"{hub.url}/api/v1/cases?limit=1", headers={"Authorization": f"Bearer {OPS}"}, timeout=60)
            rest = rss_mb(hub.proc.pid)
            page_peak, page_s, page_bytes, _ = measure(hub, "/api/v1/cases?limit=5000")
            csv_peak, csv_s, csv_bytes, csv_start = measure(hub, "/api/v1/cases/export?format=csv&status=open")
            xlsx_peak, xlsx_s, xlsx_bytes, xlsx_start = measure(hub, "/api/v1/cases/export?format=xlsx&status=open")
        finally:
            hub.stop()
    rows = [("filled (alerts -> cases)", f"{args.cases:,} in {took:.1f} s", ""),
            ("hub RSS at rest", f"{rest:.0f} MB", ""),
            ("baseline: one page of 5,000", f"peak {page_peak:.0f} MB (+{page_peak - rest:.0f})",
             f"{page_bytes / 1e6:.1f} MB in {page_s:.2f} s"),
            (f"CSV export, {args.cases:,} cases", f"peak {csv_peak:.0f} MB (+{csv_peak - csv_start:.0f})",
             f"{csv_bytes / 1e6:.1f} MB in {csv_s:.1f} s ({args.cases / csv_s:,.0f} rows/s)"),
            (f"XLSX export, {args.cases:,} cases", f"peak {xlsx_peak:.0f} MB (+{xlsx_peak - xlsx_start:.0f})",
             f"{xlsx_bytes / 1e6:.1f} MB in {xlsx_s:.1f} s ({args.cases / xlsx_s:,.0f} rows/s)")]
    for name, a, b in rows:
        print(f"{name:<34} {a:<24} {b}")
    print(f"CSV peak growth / CSV size: {(csv_peak - csv_start) / (csv_bytes / 1e6):.2f} "
          f"(a client holding the export would be >= 1)")
    print(json.dumps({"bench": "export", "cases": args.cases, "rss_rest_mb": round(rest, 1),
                      "page5000_peak_mb": round(page_peak, 1), "csv_peak_mb": round(csv_peak, 1),
                      "csv_growth_mb": round(csv_peak - csv_start, 1), "csv_mb": round(csv_bytes / 1e6, 1),
                      "csv_s": round(csv_s, 2), "xlsx_peak_mb": round(xlsx_peak, 1),
                      "xlsx_growth_mb": round(xlsx_peak - xlsx_start, 1), "xlsx_mb": round(xlsx_bytes / 1e6, 1),
                      "xlsx_s": round(xlsx_s, 2)}))


if __name__ == "__main__":
    main()
