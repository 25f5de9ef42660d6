"""Stream fan-out benchmark (issue 17): many `GET /api/v1/stream` subscribers on one hub process.

Runs `gridwatch hub serve` (SQLite by default, `--pg` for PostgreSQL) and, in the same run:
  1. POST /api/v1/alerts latency with no subscriber (the baseline): one alert per request at `--rate`/s,
     each opening a case, i.e. one case event to fan out;
  2. connects `--subscribers` stream clients spread over `--procs` client processes (raw asyncio sockets).
     `--mix district` (default) is a district as the issue describes it, on a generated org of 1 district,
     6 streets, 30 communities and 200 grids: grid workers' phones (about 45 per grid, each seeing its own
     grid), 20 screens per community, 60 per street and 100 at the district. `--mix all`: every subscriber
     is a district key and receives every event (the worst case);
  3. the hub's CPU with all subscribers idle, over `--idle` seconds (keep-alives included);
  4. the same POST series with every subscriber connected, while each client measures how long each event
     took from its stamp in the hub to its arrival (the event's `at`, same machine clock).
Prints the figures and ratios against the targets, then one JSON line.

`--hub-root DIR` runs the hub from another checkout (e.g. a worktree of an older main) for comparison.
Client mode (`--client`) is internal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "bench-edge-key"  # bench-only keys (viewers: bench-<unit>)
AT = re.compile(rb'"at": "([^"]+)"')


# ---- client processes -------------------------------------------------------------------------------
async def _subscriber(port: int, key: str, hist: dict[int, int], counts: list[int], sem: asyncio.Semaphore,
                      ready: list[int]) -> None:
    async with sem:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /api/v1/stream HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {key}\r\n"
                     "Accept: text/event-stream\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(head[:200].decode(errors="replace"))
        ready[0] += 1
    buf = b""
    while True:
        data = await reader.read(65536)
        if not data:
            return
        now = time.time()
        buf += data
        while (cut := buf.find(b"\n\n")) >= 0:
            ev, buf = buf[:cut], buf[cut + 2:]
            m = AT.search(ev)
            if m:
                ms = int((now - datetime.fromisoformat(m.group(1).decode()).timestamp()) * 1000)
                hist[ms] = hist.get(ms, 0) + 1
                counts[0] += 1


async def _client(port: int, keys_file: Path) -> None:
    keys = json.loads(keys_file.read_text())
    n = len(keys)
    hist: dict[int, int] = {}
    counts, ready = [0], [0]
    sem = asyncio.Semaphore(100)
    tasks = [asyncio.create_task(_subscriber(port, k, hist, counts, sem, ready)) for k in keys]
    while ready[0] < n:
        if any(t.done() and t.exception() for t in tasks):
            raise next(t.exception() for t in tasks if t.done() and t.exception())  # type: ignore[misc]
        await asyncio.sleep(0.1)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "report"
    lost = sum(1 for t in tasks if t.done())
    print(json.dumps({"hist": hist, "events": counts[0], "lost": lost}), flush=True)


# ---- the bench ----------------------------------------------------------------------------------------
def org_units() -> list[dict]:
    units = [{"id": "district-a", "level": "district"}]
    for s in range(6):
        units.append({"id": f"street-{s}", "level": "street", "parent": "district-a"})
    for c in range(30):
        units.append({"id": f"community-{c}", "level": "community", "parent": f"street-{c % 6}"})
    for g in range(200):
        units.append({"id": f"grid-{g:03d}", "level": "grid", "parent": f"community-{g % 30}"})
    return units


def subscriber_units(n: int, mix: str) -> list[str]:
    """The unit of each subscriber's key."""
    if mix == "all":
        return ["district-a"] * n
    out = ["district-a"] * 100 + [f"street-{s}" for s in range(6) for _ in range(60)]
    out += [f"community-{c}" for c in range(30) for _ in range(20)]
    out += [f"grid-{i % 200:03d}" for i in range(n - len(out))]
    return out[:n]


def grid_of(i: int) -> str:
    return f"grid-{(i * 37) % 200:03d}"


def alert(i: int) -> dict:
    now = datetime.now(UTC).isoformat()
    return {"alert_id": f"f{i:09d}", "state": "firing", "rule_id": "r", "edge_id": "bench",
            "device_id": f"dev-{i}", "grid_id": grid_of(i), "kind": "sensor", "category": "gas_leak",
            "severity": "major", "started_at": now, "observed_at": now, "value": 1.0, "message": "bench",
            "labels": {}, "evidence": {}}


def post_series(url: str, first: int, n: int, rate: float) -> list[float]:
    import httpx

    lat = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as c:
        start = time.perf_counter()
        for k in range(n):
            time.sleep(max(0.0, start + k / rate - time.perf_counter()))
            t = time.perf_counter()
            c.post("/api/v1/alerts", json={"alerts": [alert(first + k)]}).raise_for_status()
            lat.append(time.perf_counter() - t)
    return lat


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def hist_pct(hist: dict[int, int], q: float) -> float:
    total = sum(hist.values())
    seen = 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= q * total:
            return ms / 1000
    return float("nan")


def _hub_limits(files: int, cpus: set[int]) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    if cpus:
        os.sched_setaffinity(0, cpus)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--alerts", type=int, default=200, help="POSTs per phase")
    ap.add_argument("--rate", type=float, default=4.0, help="POSTs per second")
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measurement")
    ap.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    ap.add_argument("--mix", choices=["district", "all"], default="district",
                    help="who the subscribers are (see the module doc)")
    ap.add_argument("--hub-root", type=Path, default=ROOT)
    ap.add_argument("--shared-cpus", action="store_true", help="do not pin the hub and the load to separate cores")
    ap.add_argument("--client", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.client:
        asyncio.run(_client(args.port, args.client))
        return 0

    import psutil
    import yaml

    from hub.config import hash_key
    from simulators.services import free_port, start_postgres, stop_pid, wait_port

    if args.subscribers + 100 > hard:
        print(f"the open-files limit ({hard}) is below {args.subscribers} subscribers", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="gw-fanout-"))
    cpus = sorted(os.sched_getaffinity(0))
    # The hub on a core of its own and the load (clients, poster) on the others, as if on other machines;
    # the baseline is measured under the same split.
    hub_cpus, load_cpus = ({cpus[0]}, set(cpus[1:])) if len(cpus) > 1 and not args.shared_cpus else (set(), set())
    pg = start_postgres() if args.pg else None
    port = free_port()
    units = org_units()
    (work / "org.yaml").write_text(yaml.safe_dump({"units": units}))
    subs = subscriber_units(args.subscribers, args.mix)
    (work / "hub.yaml").write_text(yaml.safe_dump({
        "database": pg.url if pg else f"sqlite:///{work / 'hub.sqlite'}",
        "listen": {"host": "127.0.0.1", "port": port},
        "org": str(work / "org.yaml"), "sla": str(ROOT / "configs/sla.yaml"),
        "calendars": str(ROOT / "configs/calendars"),
        "keys": [{"name": "edge", "role": "edge", "hash": hash_key(KEY)}]
        + [{"name": f"v-{u['id']}", "role": "viewer", "unit": u["id"], "hash": hash_key(f"bench-{u['id']}")}
           for u in units]}))
    parents = {u["id"]: u.get("parent") for u in units}

    def chain(unit: str) -> set[str]:
        out = {unit}
        while (p := parents[unit]) is not None:
            out.add(p)
            unit = p
        return out
    env = {**os.environ, "PYTHONPATH": str(args.hub_root.resolve())}
    hub = subprocess.Popen([sys.executable, "-m", "gridwatch", "hub", "serve", "-c", str(work / "hub.yaml")],
                           env=env, cwd=args.hub_root, preexec_fn=lambda: _hub_limits(hard, hub_cpus))
    if load_cpus:
        os.sched_setaffinity(0, load_cpus)  # this process and the clients it starts
    clients: list[subprocess.Popen[str]] = []
    try:
        wait_port(port, 60, hub)
        url = f"http://127.0.0.1:{port}"
        proc = psutil.Process(hub.pid)
        post_series(url, 10**8, 5, args.rate)  # warm-up
        base = post_series(url, 0, args.alerts, args.rate)
        print(f"POST /alerts, no subscriber: p50 {pct(base, .5) * 1000:.1f} ms, p99 {pct(base, .99) * 1000:.1f} ms")

        t0 = time.perf_counter()
        for i in range(args.procs):
            keys_file = work / f"client-{i}.json"
            keys_file.write_text(json.dumps([f"bench-{u}" for u in subs[i::args.procs]]))
            clients.append(subprocess.Popen([sys.executable, __file__, "--client", str(keys_file),
                                             "--port", str(port)],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for c in clients:
            assert c.stdout is not None
            line = c.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a client failed to connect: {line!r}")
        connect_s = time.perf_counter() - t0
        rss = proc.memory_info().rss
        print(f"{args.subscribers} subscribers ({args.mix} mix) connected in {connect_s:.1f} s; "
              f"hub RSS {rss / 2**20:.0f} MiB")

        time.sleep(2)
        c0 = proc.cpu_times()
        time.sleep(args.idle)
        c1 = proc.cpu_times()
        idle_cpu = (c1.user + c1.system - c0.user - c0.system) / args.idle
        print(f"hub CPU with {args.subscribers} idle subscribers: {idle_cpu * 100:.1f}% of a core")

        c0 = proc.cpu_times()
        loaded = post_series(url, 10**6, args.alerts, args.rate)
        c1 = proc.cpu_times()
        busy_cpu = (c1.user + c1.system - c0.user - c0.system) / (args.alerts / args.rate)
        time.sleep(3)
        hist: dict[int, int] = {}
        events = lost = 0
        for c in clients:
            assert c.stdin is not None and c.stdout is not None
            c.stdin.write("report\n")
            c.stdin.flush()
            rep = json.loads(c.stdout.readline())
            for ms, k in rep["hist"].items():
                hist[int(ms)] = hist.get(int(ms), 0) + k
            events += rep["events"]
            lost += rep["lost"]
        per_unit: dict[str, int] = {}
        for u in subs:
            per_unit[u] = per_unit.get(u, 0) + 1
        recipients = [sum(per_unit.get(u, 0) for u in chain(grid_of(10**6 + k))) for k in range(args.alerts)]
        expected = sum(recipients)
        print(f"POST /alerts, {args.subscribers} subscribers: p50 {pct(loaded, .5) * 1000:.1f} ms, "
              f"p99 {pct(loaded, .99) * 1000:.1f} ms")
        d50, d99 = hist_pct(hist, .5), hist_pct(hist, .99)
        print(f"hub CPU while posting: {busy_cpu * 100:.0f}% of a core; each event went to "
              f"{statistics.mean(recipients):.0f} subscribers on average")
        print(f"delivery: {events} of {expected} events arrived ({lost} streams ended); "
              f"p50 {d50 * 1000:.0f} ms, p99 {d99 * 1000:.0f} ms, max {max(hist) if hist else 0} ms")
        ratio = pct(loaded, .99) / pct(base, .99)
        ok = idle_cpu <= 0.10 and d99 <= 1.0 and ratio <= 2.0 and events == expected
        print(f"targets: idle CPU {idle_cpu * 100:.1f}% (<= 10%), delivery p99 {d99:.2f} s (<= 1 s), "
              f"POST p99 ratio {ratio:.2f} (<= 2): {'met' if ok else 'NOT met'}")
        print(json.dumps({"bench": "fanout", "database": "postgresql" if pg else "sqlite", "mix": args.mix,
                          "hub_cpus": sorted(hub_cpus), "load_cpus": sorted(load_cpus),
                          "recipients_mean": round(statistics.mean(recipients)), "busy_cpu": round(busy_cpu, 3),
                          "hub_root": str(args.hub_root), "subscribers": args.subscribers, "rate": args.rate,
                          "alerts": args.alerts, "connect_s": round(connect_s, 1),
                          "hub_rss_mib": round(rss / 2**20), "idle_cpu": round(idle_cpu, 3),
                          "post_p50_ms_base": round(pct(base, .5) * 1000, 1),
                          "post_p99_ms_base": round(pct(base, .99) * 1000, 1),
                          "post_p50_ms": round(pct(loaded, .5) * 1000, 1),
                          "post_p99_ms": round(pct(loaded, .99) * 1000, 1), "post_p99_ratio": round(ratio, 2),
                          "delivery_p50_s": d50, "delivery_p99_s": d99, "events": events, "expected": expected,
                          "mean_post_ms": round(statistics.mean(loaded) * 1000, 1), "targets_met": ok}))
        return 0 if ok else 1
    finally:
        for c in clients:
            c.kill()
        stop_pid(hub)
        if pg:
            pg.stop()


if __name__ == "__main__":
    sys.exit(main())
