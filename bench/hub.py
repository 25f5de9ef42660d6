"""Hub benchmark: alerts→cases per second through the HTTP API (batches of 100) on SQLite and PostgreSQL,
against the same rows inserted with plain SQL in the same run (the ceiling); and the time the scheduler
takes to find the due cases among 1,000,000 open cases; and the assessment (考核) over 1,000,000 closed cases
beside a bare count of them. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import insert, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from hub.config import hash_key  # noqa: E402
from hub.store.db import make_engine, migrate  # noqa: E402
from hub.store.models import AlertRow, Case, CaseRequest, TimelineEntry  # noqa: E402
from simulators.services import free_port, start_postgres, stop_pid, wait_port  # noqa: E402

KEY = "bench-edge-key"


def alerts(n: int, offset: int = 0) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [{"alert_id": f"b{offset + i:09d}", "state": "firing", "rule_id": "r", "edge_id": "bench",
             "device_id": f"dev-{offset + i}", "grid_id": f"grid-0{1 + i % 3}", "kind": "sensor",
             "category": "gas_leak", "severity": "major", "started_at": now, "observed_at": now, "value": 1.0,
             "message": "bench", "labels": {}, "evidence": {}} for i in range(n)]


def api_rate(db_url: str, work: Path, n: int) -> float:
    port = free_port()
    cfg = {"database": db_url, "listen": {"host": "127.0.0.1", "port": port},
           "org": str(ROOT / "configs/org.yaml"), "sla": str(ROOT / "configs/sla.yaml"),
           "calendars": str(ROOT / "configs/calendars"), "keys": [{"name": "edge", "role": "edge",
                                                                   "hash": hash_key(KEY)}]}
    (work / "hub.yaml").write_text(yaml.safe_dump(cfg))
    hub = subprocess.Popen([sys.executable, "-m", "gridwatch", "hub", "serve", "-c", str(work / "hub.yaml")])
    try:
        wait_port(port, 30, hub)
        batches = [alerts(100, k * 100) for k in range(n // 100)]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"},
                          timeout=60) as c:
            c.post("/api/v1/alerts", json={"alerts": alerts(100, 10**8)})  # warm-up
            start = time.perf_counter()
            for b in batches:
                r = c.post("/api/v1/alerts", json={"alerts": b})
                r.raise_for_status()
            return n / (time.perf_counter() - start)
    finally:
        stop_pid(hub)


def sql_rate(db_url: str, n: int) -> float:
    """The same rows (case, alert, timeline entry per alert) with plain SQL inserts, batches of 100."""
    engine = make_engine(db_url)
    migrate(engine)
    now = datetime.now(UTC)
    start = time.perf_counter()
    for k in range(n // 100):
        with engine.begin() as conn:
            rows = alerts(100, 5 * 10**8 + k * 100)
            cases = [{"id": f"x{a['alert_id']}", "dedup_key": f"{a['grid_id']}|{a['device_id']}|gas_leak",
                      "status": "open", "manual": False, "category": "gas_leak", "severity": "major",
                      "grid": a["grid_id"], "device": a["device_id"], "owner": a["grid_id"], "title": "bench",
                      "policy": {}, "opened_at": now, "stage_started_at": now, "first_seen": now,
                      "last_seen": now, "first_received": now, "alert_count": 1, "escalations": 0,
                      "backup_notified": False, "version": 1, "next_due": now + timedelta(minutes=5)}
                     for a in rows]
            conn.execute(insert(Case), cases)
            conn.execute(insert(AlertRow), [{"alert_id": a["alert_id"], "state": "firing",
                                             "case_id": f"x{a['alert_id']}", "observed_at": now,
                                             "received_at": now, "body": a} for a in rows])
            conn.execute(insert(TimelineEntry), [{"case_id": f"x{a['alert_id']}", "at": now, "actor": "edge",
                                                  "action": "opened", "detail": {}} for a in rows])
    rate = n / (time.perf_counter() - start)
    engine.dispose()
    return rate


def due_pick(db_url: str, total: int) -> tuple[float, int]:
    """Fill `total` open cases (a few due), then time the scheduler's due-case query (best of 5)."""
    engine = make_engine(db_url)
    migrate(engine)
    now = datetime.now(UTC)
    later, due_at = (now + timedelta(hours=1)).isoformat(), (now - timedelta(seconds=1)).isoformat()
    with engine.begin() as conn:
        step = 100_000
        for base in range(0, total, step):
            rows = [{"id": f"c{base + i:09d}", "dedup_key": f"k{base + i}", "status": "open", "manual": False,
                     "category": "x", "severity": "minor", "grid": "grid-01", "device": None, "owner": "grid-01",
                     "title": "", "policy": {}, "opened_at": now, "stage_started_at": now, "first_seen": now,
                     "last_seen": now, "first_received": now, "alert_count": 1, "escalations": 0,
                     "backup_notified": False, "version": 1,
                     "next_due": datetime.fromisoformat(due_at if (base + i) % 50_000 == 0 else later)}
                    for i in range(min(step, total - base))]
            conn.execute(insert(Case), rows)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE cases"))
    best, found = float("inf"), 0
    q = (select(Case).where(Case.next_due.is_not(None), Case.next_due <= now).order_by(Case.next_due)
         .limit(200).with_for_update(skip_locked=True))
    for _ in range(5):
        with Session(engine) as s, s.begin():
            t = time.perf_counter()
            found = len(list(s.scalars(q)))
            best = min(best, time.perf_counter() - t)
    engine.dispose()
    return best * 1000, found


RATINGS = ("satisfied", "basically", "unsatisfied", None, None)


def assessment_time(db_url: str, total: int, units: int = 200) -> tuple[float, float, int]:
    """Fill `total` closed cases over `units` grids and 30 days (accept and resolve times, some late, extended,
    escalated, reopened, callback ratings on 3 in 5, and 1 in 50 sent back), then time the assessment over the
    whole period (best of 3), beside a bare
    `count(*)` of the same rows (the floor of any answer that reads them all). Milliseconds, and the units."""
    from types import SimpleNamespace

    from hub.analysis.assessment import assess

    engine = make_engine(db_url)
    migrate(engine)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        step = 100_000
        for base in range(0, total, step):
            rows = []
            for i in range(base, min(base + step, total)):
                opened = start + timedelta(seconds=i * 30 * 86400 // total)
                rows.append({
                    "id": f"a{i:09d}", "dedup_key": f"k{i}", "status": "closed", "manual": False, "category": "x",
                    "severity": "minor", "grid": f"g-{i % units:03d}", "device": None, "owner": f"g-{i % units:03d}",
                    "title": "", "policy": {}, "opened_at": opened, "stage_started_at": opened, "first_seen": opened,
                    "last_seen": opened, "first_received": opened, "closed_at": opened + timedelta(hours=2),
                    "alert_count": 1, "escalations": int(i % 17 == 0), "backup_notified": False, "version": 1,
                    "extensions": int(i % 23 == 0), "reopened": int(i % 41 == 0), "accept_s": float(60 + i % 600),
                    "accept_late": i % 600 > 300, "resolve_s": float(600 + i % 7200), "resolve_late": i % 7200 > 3600,
                    "rating": RATINGS[i % 5]})
            conn.execute(insert(Case), rows)
            conn.execute(insert(CaseRequest), [  # 1 case in 50 was sent back once by its grid (退回)
                {"case_id": r["id"], "kind": "send_back", "stage": "accept", "reason": "r", "until": None,
                 "unit": r["owner"], "requested_by": "b", "requested_at": r["opened_at"], "decision": "done",
                 "decided_by": "b", "decided_at": r["opened_at"], "note": ""}
                for j, r in enumerate(rows) if j % 50 == 0])
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE cases"))
    store = SimpleNamespace(engine=engine)
    best, floor, got = float("inf"), float("inf"), 0
    for _ in range(3):
        t = time.perf_counter()
        got = len(assess(store, start, start + timedelta(days=31), None))  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - t)
        with engine.connect() as conn:
            t = time.perf_counter()
            conn.execute(text("SELECT count(*) FROM cases")).scalar()
            floor = min(floor, time.perf_counter() - t)
    engine.dispose()
    return best * 1000, floor * 1000, got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--open-cases", type=int, default=1_000_000)
    ap.add_argument("--closed-cases", type=int, default=1_000_000)
    args = ap.parse_args()
    figures: dict = {"bench": "hub"}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        pg = start_postgres()
        try:
            for name, url in (("sqlite", f"sqlite:///{work / 'hub.sqlite'}"), ("postgresql", pg.url)):
                api = api_rate(url, work, args.alerts)
                ceiling = sql_rate(url, args.alerts)
                figures[f"{name}_api_alerts_per_s"] = round(api)
                figures[f"{name}_sql_rows_per_s"] = round(ceiling)
                figures[f"{name}_ratio"] = round(api / ceiling, 3)
                print(f"{name:<11} API alerts→cases/s {api:>9,.0f}   plain SQL {ceiling:>9,.0f}   "
                      f"ratio {api / ceiling:.2f}   (targets: SQLite >= 2,000/s, ratio >= 0.25)")
            ms, found = due_pick(f"sqlite:///{work / 'due.sqlite'}", args.open_cases)
            figures["sqlite_due_pick_ms"] = round(ms, 2)
            print(f"due-case pick among {args.open_cases:,} open cases (SQLite): {ms:.2f} ms, {found} due "
                  f"(target <= 20 ms)")
            admin = make_engine(pg.url).execution_options(isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("CREATE DATABASE due"))
            admin.dispose()
            ms, found = due_pick(pg.url.rsplit("/", 1)[0] + "/due", args.open_cases)
            figures["postgresql_due_pick_ms"] = round(ms, 2)
            print(f"due-case pick among {args.open_cases:,} open cases (PostgreSQL): {ms:.2f} ms, {found} due")
            admin = make_engine(pg.url).execution_options(isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("CREATE DATABASE assess"))
            admin.dispose()
            for name, url in (("sqlite", f"sqlite:///{work / 'assess.sqlite'}"),
                              ("postgresql", pg.url.rsplit("/", 1)[0] + "/assess")):
                ms, floor, units = assessment_time(url, args.closed_cases)
                figures[f"{name}_assessment_ms"] = round(ms, 1)
                figures[f"{name}_count_all_ms"] = round(floor, 1)
                print(f"assessment of {args.closed_cases:,} closed cases ({name}): {ms:,.0f} ms for {units} units; "
                      f"a bare count(*) of them {floor:,.0f} ms; ratio {ms / floor:.1f} (target <= 1,000 ms)")
        finally:
            pg.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
