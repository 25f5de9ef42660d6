"""考核 (issue 13) on SQLite and PostgreSQL: the per-unit figures and the ranking are checked against a brute-force
computation from the cases' own timelines on a small random data set; the drill-down gives the cases behind a
figure; scopes hold; the table exports as CSV and XLSX."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from hub.cases.scheduler import Scheduler
from tests.hubkit import api_client

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
KEYS = {"edge": ("edge", None), "ops": ("operator", "district-a"), "ops-2": ("operator", "district-a"),
        "view-g1": ("viewer", "grid-01"), "view-s2": ("viewer", "street-2")}
GRIDS = ("grid-01", "grid-02", "grid-03")


def H(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{name}"}


@pytest.fixture
def client(db_url):
    with api_client(db_url, KEYS, T) as c:
        yield c


def alert(aid: str, grid: str, device: str, at: datetime) -> dict:
    return {"alert_id": aid, "state": "firing", "rule_id": "gas-high", "edge_id": "edge-a", "device_id": device,
            "grid_id": grid, "kind": "sensor", "category": "gas_leak", "severity": "critical",
            "started_at": at.isoformat(), "observed_at": at.isoformat(), "value": 1.0, "message": "m",
            "labels": {}, "evidence": {}}


def build(client, n: int = 45, seed: int = 7) -> list[str]:
    """n gas cases (life-safety: accept 5 min, resolve 1 h) over three grids, acted on at random times: some
    accepted late, some resolved late, some never, some extended, some closed; the scheduler runs at every
    step, so late cases are escalated; some leaks return after the result was reported (reopened) and some
    after the case was closed (a repeat case, 重复件)."""
    rnd = random.Random(seed)
    plan: list[tuple[datetime, str, str, str, dict]] = []
    ids = []
    for i in range(n):
        at = T + timedelta(seconds=20 * i)
        client.clock["now"] = at
        grid = GRIDS[rnd.randrange(3)]
        r = client.post("/api/v1/alerts", json={"alerts": [alert(f"x{i}", grid, f"gas-{i}", at)]}, headers=H("edge"))
        cid = r.json()["results"][0]["case_id"]
        ids.append(cid)
        if rnd.random() < 0.1:
            continue  # never accepted
        accept = at + timedelta(seconds=rnd.randrange(60, 600))
        plan.append((accept, cid, "accept", "ops", {}))
        if rnd.random() < 0.2:
            plan.append((accept + timedelta(minutes=10), cid, "extension", "ops",
                         {"reason": "r", "until": (accept + timedelta(hours=3)).isoformat()}))
        if rnd.random() < 0.15:
            continue  # never resolved
        resolve = accept + timedelta(seconds=rnd.randrange(900, 9000))
        plan.append((resolve, cid, "resolve", "ops", {"note": "done"}))
        if rnd.random() < 0.5:
            plan.append((resolve + timedelta(minutes=1), cid, "close", "ops-2", {}))
            if rnd.random() < 0.3:  # the leak comes back after closing: a repeat case
                plan.append((resolve + timedelta(minutes=30), cid, "return", "edge", alert(f"x{i}r", grid, f"gas-{i}",
                                                                                           at)))
        elif rnd.random() < 0.4:  # the leak comes back while the result waits for 核查: reopened
            plan.append((resolve + timedelta(minutes=5), cid, "return", "edge", alert(f"x{i}r", grid, f"gas-{i}", at)))
    scheduler = Scheduler(client.app.state.hub.store)
    for when, cid, action, key, body in sorted(plan, key=lambda p: p[0]):
        client.clock["now"] = when
        scheduler.run_due()
        if action == "return":
            body = {**body, "started_at": when.isoformat(), "observed_at": when.isoformat()}
            r = client.post("/api/v1/alerts", json={"alerts": [body]}, headers=H(key))
            assert r.status_code == 200, r.text
            if (new := r.json()["results"][0]["case_id"]) != cid:
                ids.append(new)
            continue
        r = client.post(f"/api/v1/cases/{cid}/{action}", json=body, headers=H(key))
        assert r.status_code in (200, 201), r.text
        if action == "extension":
            rid = r.json()["requests"][-1]["id"]
            assert client.post(f"/api/v1/cases/{cid}/extension/{rid}/approve", headers=H("ops-2")).status_code == 200
    client.clock["now"] = T + timedelta(days=1)
    scheduler.run_due()
    return ids


def ratio(a: float, b: float, digits: int) -> float | None:
    return round(a / b, digits) if b else None


def brute_force(client, ids: list[str]) -> dict[str, dict]:
    """The figures from each case's timeline and policy alone."""
    out: dict[str, dict] = {}
    for cid in ids:
        c = client.get(f"/api/v1/cases/{cid}", headers=H("ops")).json()
        u = out.setdefault(c["owner"], {"dispatched": 0, "accepted": 0, "accepted_on_time": 0, "resolved": 0,
                                        "resolved_on_time": 0, "extended": 0, "closed": 0, "overdue": 0, "a": 0.0,
                                        "r": 0.0, "escalated": 0, "reopened": 0, "repeats": 0})
        at = {e["action"]: datetime.fromisoformat(e["at"]) for e in c["timeline"]}
        extra = sum(e["detail"].get("extra_s", 0.0) for e in c["timeline"] if e["action"] == "extension_approved")
        opened = datetime.fromisoformat(c["opened_at"])
        u["dispatched"] += 1
        late = False
        if "accept" in at:
            took = (at["accept"] - opened).total_seconds()
            u["accepted"] += 1
            u["accepted_on_time"] += took <= 300
            late |= took > 300
            u["a"] += took
        if "resolve" in at and not ("reopened" in at and at["reopened"] > at["resolve"]):  # a result that held
            took = (at["resolve"] - at["accept"]).total_seconds()
            u["resolved"] += 1
            u["resolved_on_time"] += took <= 3600 + extra
            late |= took > 3600 + extra
            u["r"] += took
        u["overdue"] += late
        u["extended"] += "extension_approved" in at
        u["closed"] += "close" in at
        u["escalated"] += "escalated" in at
        u["reopened"] += "reopened" in at
        u["repeats"] += "repeat" in at
    return out


def test_figures_match_a_brute_force_count_and_rank(client):
    ids = build(client)
    want = brute_force(client, ids)
    period = {"since": T.isoformat(), "until": (T + timedelta(days=1)).isoformat()}
    got = client.get("/api/v1/assessment", params=period, headers=H("ops")).json()
    rows = {r["unit"]: r for r in got["units"]}
    for k in ("escalated", "reopened", "repeats"):  # the data set has some of each, so the checks below can fail
        assert sum(w[k] for w in want.values()) > 0, k
    assert set(rows) == set(want) and sum(r["dispatched"] for r in rows.values()) == len(ids)
    for unit, w in want.items():
        r = rows[unit]
        for k in ("dispatched", "accepted", "accepted_on_time", "resolved", "resolved_on_time", "extended", "closed",
                  "overdue", "escalated", "reopened", "repeats"):
            assert r[k] == w[k], (unit, k, r[k], w[k])
        assert r["resolved_on_time_pct"] == ratio(100 * w["resolved_on_time"], w["resolved"], 2)
        assert r["accepted_on_time_pct"] == ratio(100 * w["accepted_on_time"], w["accepted"], 2)
        assert r["mean_accept_s"] == ratio(w["a"], w["accepted"], 1)
        assert r["mean_resolve_s"] == ratio(w["r"], w["resolved"], 1)
        assert r["satisfaction_pct"] is None
    w = want

    def rank_key(u: str) -> tuple:  # no figure ranks below any figure; then more cases first, then the id
        on_time = ratio(100 * w[u]["resolved_on_time"], w[u]["resolved"], 2)
        accepted = ratio(100 * w[u]["accepted_on_time"], w[u]["accepted"], 2)
        return (-(on_time if on_time is not None else -1.0), -(accepted if accepted is not None else -1.0),
                -w[u]["dispatched"], u)
    order = sorted(w, key=rank_key)
    assert [r["unit"] for r in got["units"]] == order and [r["rank"] for r in got["units"]] == list(
        range(1, len(order) + 1))
    # the cases behind a figure
    unit = order[0]
    behind = client.get("/api/v1/assessment/cases", params={"unit": unit, "measure": "accepted_late",
                                                            "since": T.isoformat()}, headers=H("ops")).json()
    assert len(behind["cases"]) == want[unit]["accepted"] - want[unit]["accepted_on_time"]
    for cid in behind["cases"]:
        c = client.get(f"/api/v1/cases/{cid}", headers=H("ops")).json()
        accepted = next(e for e in c["timeline"] if e["action"] == "accept")
        assert (datetime.fromisoformat(accepted["at"]) - datetime.fromisoformat(c["opened_at"])).total_seconds() > 300
    assert client.get("/api/v1/assessment/cases", params={"unit": unit, "measure": "nonsense"},
                      headers=H("ops")).status_code == 404


def test_scope_period_and_exports(client):
    build(client, n=20, seed=3)
    mine = client.get("/api/v1/assessment", params={"since": T.isoformat()}, headers=H("view-g1")).json()
    assert {r["unit"] for r in mine["units"]} <= {"grid-01"}
    street = client.get("/api/v1/assessment", params={"since": T.isoformat()}, headers=H("view-s2")).json()["units"]
    org = client.app.state.hub.store.org
    everyone = client.get("/api/v1/assessment", params={"since": T.isoformat()}, headers=H("ops")).json()["units"]
    theirs = {r["unit"] for r in everyone} & org.subtree("street-2")  # grid-03, and the levels above it
    assert theirs and {r["unit"] for r in street} == theirs
    assert client.get("/api/v1/assessment/cases", params={"unit": "grid-02", "measure": "dispatched"},
                      headers=H("view-g1")).status_code == 404
    assert client.get("/api/v1/assessment").status_code == 401
    assert client.get("/api/v1/assessment", headers=H("edge")).status_code == 403
    later = client.get("/api/v1/assessment", params={"since": (T + timedelta(hours=23)).isoformat()},
                       headers=H("ops")).json()
    assert later["units"] == []  # nothing opened in that period
    full = client.get("/api/v1/assessment", params={"since": T.isoformat()}, headers=H("ops")).json()["units"]
    r = client.get("/api/v1/assessment/export", params={"since": T.isoformat()}, headers=H("ops"))
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[0][:3] == ["排名", "单位", "派单数"] and len(table) == 1 + len(full)
    assert table[1][1] == f"{full[0]['name']} ({full[0]['unit']})" and int(table[1][2]) == full[0]["dispatched"]
    r = client.get("/api/v1/assessment/export", params={"since": T.isoformat(), "format": "xlsx", "lang": "en"},
                   headers=H("ops"))
    ws = load_workbook(io.BytesIO(r.content)).active
    assert [c.value for c in ws[1]][:3] == ["Rank", "Unit", "Dispatched"] and ws.max_row == 1 + len(full)
