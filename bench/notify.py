"""Notices benchmark (issue 26): case events through the hub's notifier to the channel emulators.

In one run, on each database (`--db both`, the default: SQLite, the embedded default, then PostgreSQL, a
throwaway cluster from Debian's server; or `--db sqlite|postgresql`):
1. alert intake (alerts->cases per second through the API, batches of 100, as bench/hub.py measures it) by a
   hub without a notification policy: the baseline;
2. the same intake by a hub with the policy of tests/notifykit.py (each new gas case: three people, its grid's
   day staff and leader, by Aliyun SMS to the emulator), the notifier sending meanwhile: the ratio;
3. the notifier's ceiling: notices delivered per second while it drains that burst;
4. a paced load of `--events` case events (default 10,000, three recipients each) at half the ceiling: the
   time from each event (its timeline entry) to its delivery (the emulator's receipt), p50/p99/max.
Target: intake with notices at least 0.9 of the baseline on each database. Every hub starts with the same data
key (GRIDWATCH_DATA_KEY, made for the run when unset: the contact points seeded here must open in the hubs),
and every process the bench starts is stopped however it ends (SIGTERM included). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from hub.config import hash_key  # noqa: E402
from hub.store.db import make_engine  # noqa: E402
from hub.store.models import Notice, TimelineEntry  # noqa: E402
from simulators.services import free_port, start_postgres, stop_pid, wait_port  # noqa: E402
from tests.notifykit import ROSTERS, SECRETS, emulator_spec, seed_people  # noqa: E402

KEY = "bench-edge-key"
ROUNDS = 3
SLA = {"policies": [{"id": "gas", "calendar": "24x7", "limits": {"accept": "1h", "resolve": "1d", "feedback": "1d"}}]}


def alerts(n: int, offset: int) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [{"alert_id": f"n{offset + i:09d}", "state": "firing", "rule_id": "r", "edge_id": "bench",
             "device_id": f"dev-{offset + i}", "grid_id": "grid-01", "kind": "sensor", "category": "gas_leak",
             "severity": "critical", "started_at": now, "observed_at": now, "value": 1.0, "message": "bench",
             "labels": {}, "evidence": {}} for i in range(n)]


def policy(port: int) -> dict:
    return {"link": "http://hub.example/", "lease": "30s", "channels": [
        {"id": "sms", "type": "sms", "endpoint": f"http://127.0.0.1:{port}/", "access_key_id_env": "GW_T_AK_ID",
         "access_key_secret_env": "GW_T_AK_SECRET", "sign_name": "网格", "rate_per_minute": 1_000_000,
         "templates": {"opened": "SMS_1"}}],
        "rules": [{"id": "three", "events": ["opened"], "to": ["day", "leader"], "via": ["sms"], "urgent": True}]}


class HubProc:
    def __init__(self, work: Path, port_emu: int | None, database: str) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(database)
        seed_people(database)
        self.port = free_port()
        (work / "sla.yaml").write_text(yaml.safe_dump(SLA))
        cfg = {"database": database, "listen": {"host": "127.0.0.1", "port": self.port},
               "org": str(ROOT / "configs/org.yaml"), "sla": str(work / "sla.yaml"),
               "calendars": str(ROOT / "configs/calendars"), "limits": {"intake_rate": 1_000_000,
                                                                       "intake_burst": 1_000_000},
               "keys": [{"name": "edge", "role": "edge", "hash": hash_key(KEY)}]}
        if port_emu is not None:
            (work / "notify.yaml").write_text(yaml.safe_dump(policy(port_emu)))
            (work / "rosters.yaml").write_text(yaml.safe_dump(ROSTERS))
            cfg |= {"notify": str(work / "notify.yaml"), "rosters": str(work / "rosters.yaml")}
        (work / "hub.yaml").write_text(yaml.safe_dump(cfg))
        self.log = open(work / "hub.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "gridwatch", "hub", "serve", "-c", str(work / "hub.yaml")],
                                     stderr=self.log)
        try:
            wait_port(self.port, 30, self.proc)
        except RuntimeError:
            print((work / "hub.log").read_text()[-2000:], file=sys.stderr)
            raise
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}",
                                   headers={"Authorization": f"Bearer {KEY}"}, timeout=60)

    def post(self, batch: list[dict]) -> None:
        self.client.post("/api/v1/alerts", json={"alerts": batch}).raise_for_status()

    def intake(self, n: int, offset: int) -> float:
        batches = [alerts(100, offset + k * 100) for k in range(n // 100)]
        start = time.perf_counter()
        for b in batches:
            self.post(b)
        return n / (time.perf_counter() - start)

    def delivered(self) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(func.count()).where(Notice.state == "delivered")) or 0)

    def event_times(self) -> dict[int, float]:
        """Each notice's event instant (its timeline entry), by notice id, as epoch seconds."""
        with Session(self.engine) as s:
            rows = s.execute(select(Notice.id, TimelineEntry.at).join(TimelineEntry,
                                                                      TimelineEntry.id == Notice.event_id)).all()
        return {i: at.timestamp() for i, at in rows}

    def stop(self) -> None:
        """Idempotent: the bench stops a hub when done with it, and its exit stack again on any way out."""
        self.client.close()
        stop_pid(self.proc)
        self.engine.dispose()
        self.log.close()


TARGET_RATIO = 0.9


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--intake", type=int, default=2_000, help="alerts for each intake figure (three of each)")
    p.add_argument("--db", choices=["both", "postgresql", "sqlite"], default="both")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a bench ended from outside still stops its hubs
    if not os.environ.get("GRIDWATCH_DATA_KEY"):
        from cryptography.fernet import Fernet
        os.environ["GRIDWATCH_DATA_KEY"] = Fernet.generate_key().decode()
    results = {}
    for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        print(f"--- {db}", flush=True)
        with contextlib.ExitStack() as stack:
            pg = start_postgres() if db == "postgresql" else None
            if pg is not None:
                stack.callback(pg.stop)
            results[db] = run(args, pg.url if pg else None, db, stack)
    met = all(r["intake_ratio"] >= TARGET_RATIO for r in results.values())
    print(json.dumps({"bench": "notify", **{f"{db}_{k}": v for db, r in results.items() for k, v in r.items()},
                      "target_ratio": TARGET_RATIO, "targets_met": met}))
    return 0 if met else 1


def database(pg: str | None, work: Path, name: str) -> str:
    if pg is None:
        return f"sqlite:///{work / name}.sqlite"
    from sqlalchemy import create_engine, text
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return pg.rsplit("/", 1)[0] + "/" + name


def run(args: argparse.Namespace, pg: str | None, db: str, stack: contextlib.ExitStack) -> dict:
    for k, v in SECRETS.items():
        os.environ[k] = v
    work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    port = free_port()
    (work / "emu.json").write_text(json.dumps(emulator_spec(work, port=port)))
    # the emulators stand for the vendors' services, which are not on the hub's machine: nice 19 keeps them
    # from taking the cores from the hub's intake here
    emu = subprocess.Popen(["nice", "-n", "19", sys.executable, "-m", "simulators.notify_emulators",
                            str(work / "emu.json")], stdout=subprocess.DEVNULL)
    stack.callback(stop_pid, emu)
    wait_port(port, 20, emu)
    bare = HubProc(work / "bare", None, database(pg, work, "bare"))
    stack.callback(bare.stop)
    hub = HubProc(work / "notify", port, database(pg, work, "notify"))
    stack.callback(hub.stop)
    bare.post(alerts(100, 10**8))  # warm-up
    hub.post(alerts(100, 10**8))
    wait_until(lambda: hub.delivered() >= 300, 60)
    runs: dict[str, list[float]] = {"base": [], "with": []}
    for r in range(ROUNDS):  # alternately, so both see the same machine; the median of each
        runs["base"].append(bare.intake(args.intake, r * args.intake))
        runs["with"].append(hub.intake(args.intake, r * args.intake))
    bare.stop()
    base, with_notices = statistics.median(runs["base"]), statistics.median(runs["with"])
    ratio = with_notices / base
    print(f"intake without notices: {base:,.0f} alerts/s (median of "
          f"{', '.join(f'{x:,.0f}' for x in runs['base'])})")
    print(f"intake with notices:    {with_notices:,.0f} alerts/s ({ratio:.2f} of the baseline; median of "
          f"{', '.join(f'{x:,.0f}' for x in runs['with'])}), the notifier sending meanwhile")
    want = 3 * (ROUNDS * args.intake + 100)
    t0, n0 = time.perf_counter(), hub.delivered()
    wait_until(lambda: hub.delivered() >= want, 600)
    ceiling = (want - n0) / (time.perf_counter() - t0)
    print(f"notifier ceiling:       {ceiling:,.0f} notices/s ({ceiling / 3:,.0f} events/s at 3 each)")

    rate = ceiling / 3 / 2  # events a second: half the ceiling
    httpx.post(f"http://127.0.0.1:{port}/_reset")
    first = hub.event_times()
    start, sent = time.perf_counter(), 0
    offset = 10**7
    while sent < args.events:  # paced in batches of 10
        due = start + sent / rate
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        hub.post(alerts(10, offset + sent))
        sent += 10
    total = want + 3 * args.events
    wait_until(lambda: hub.delivered() >= total, 600)
    got = httpx.get(f"http://127.0.0.1:{port}/_received", timeout=60).json()["received"]
    events = hub.event_times()
    lat = sorted(r["at"] - events[i] for r in got for i in r["ids"] if i in events and i not in first)
    counts: dict[int, int] = {}
    for r in got:
        for i in r["ids"]:
            counts[i] = counts.get(i, 0) + 1
    twice = sum(1 for v in counts.values() if v > 1)
    p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
    print(f"paced {args.events:,} events at {rate:,.0f}/s: {len(lat):,} notices, event->delivered "
          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms; twice: {twice}")
    return {"intake_base": round(base), "intake_with_notices": round(with_notices),
            "intake_ratio": round(ratio, 3), "ceiling_notices_s": round(ceiling),
            "paced_events_s": round(rate), "events": args.events, "notices": len(lat),
            "p50_ms": round(p50 * 1000), "p99_ms": round(p99 * 1000),
            "max_ms": round(lat[-1] * 1000), "twice": twice}


def wait_until(pred, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError("the notifier did not catch up")
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
