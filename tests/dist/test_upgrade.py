"""Upgrades lose nothing (issue 29; run by `make dist-test` with the wheel's test, in CI): a database at each earlier revision, filled, migrated to head, on SQLite and
PostgreSQL.

The reference is a hub at head driven through the API with an injected clock: gas cases accepted, resolved,
closed, extended, escalated, reopened and repeated (the assessment's data set), citizen reports walked through
派单, joint handling (协办), 核查 failed and passed, 回访 不满意 then 满意, 挂起 asked for, refused, approved and
resumed, 延期 still pending, a case returned, people with a session, machine keys, devices with names and
places, an agent's heartbeat. Every row of every table is dumped.

For each earlier revision R: a new database is migrated to R, given every reference row in the columns R's schema
has (what a release at R could have stored), and migrated to head. Then
- every row is there and every column R had holds the reference value (nothing lost or altered by the table
  rebuilds that SQLite's batch migrations do, nor by type or time-zone handling on PostgreSQL);
- the upgraded database equals a database made at head from the same content (the columns added after R take
  the same defaults either way), row for row;
- every derived figure the hub serves from it (each case's clocks, lights, stages, requests and timeline; the
  case list; the assessment of each unit; the device list) equals the figures served from that head-made
  database, so head's code reads old rows as it reads its own (no crash on a NULL an old release left);
- the upgraded hub takes new work (a case accepted, an alert ingested) without an id clash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import MetaData, inspect, select, text

from hub.store.db import make_engine, migrate, revisions
from hub.store.models import Base
from tests.hubkit import api_client, fresh_pg_database
from tests.test_assessment import alert, build
from tests.test_case_control import H, T, at

KEYS = {"edge": ("edge", None), "ops": ("operator", "district-a"), "ops-2": ("operator", "district-a"),
        "s1": ("operator", "street-1"), "cg1": ("operator", "dept-cg-1"), "cg1b": ("operator", "dept-cg-1"),
        "police": ("operator", "dept-police-1"), "g1": ("operator", "grid-01"), "s1b": ("operator", "street-1"),
        "admin": ("admin", None)}
SLA = {"policies": [
    {"id": "citizen", "match": {"manual": True}, "calendar": "24x7", "callback": True,
     "limits": {"dispatch": "30m", "accept": "1h", "resolve": "1d", "feedback": "4h", "callback": "1d"}},
    {"id": "life-safety", "match": {"categories": ["gas_leak"]}, "calendar": "24x7",
     "limits": {"accept": "5m", "resolve": "1h", "feedback": "1d"}},
    {"id": "default", "calendar": "24x7", "limits": {"accept": "1h", "resolve": "1d", "feedback": "1d"}}]}
EARLIER = revisions()[:-1]
pytestmark = pytest.mark.dist  # `make dist-test` (install and upgrade), beside the wheel; keeps `make test` short


def post(client: Any, path: str, key: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = client.post(f"/api/v1/{path}", json=body, headers=H(key))
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def report(client: Any) -> str:
    return post(client, "cases", "g1", {"grid": "grid-01", "category": "city_management", "title": "占道经营"})["id"]


def fill(client: Any) -> list[str]:
    """The reference content after the assessment's data set: the stage model's cases, people, keys, devices;
    returns their case ids."""
    at(client, 24 * 60 + 10)
    base = 24 * 60 + 10
    walk = report(client)  # every stage, joint handling, 核查 failed then passed, 回访 不满意 then 满意
    post(client, f"cases/{walk}/dispatch", "ops", {"unit": "dept-cg-1", "assist": ["dept-police-1"], "note": "派"})
    at(client, base + 10)
    post(client, f"cases/{walk}/accept", "cg1")
    post(client, f"cases/{walk}/parts/dept-police-1/sign", "police")
    at(client, base + 40)
    post(client, f"cases/{walk}/parts/dept-police-1/report", "police", {"note": "已维持秩序"})
    post(client, f"cases/{walk}/resolve", "cg1", {"note": "已清理"})
    post(client, f"cases/{walk}/reject", "g1", {"note": "复查未通过"})
    at(client, base + 80)
    post(client, f"cases/{walk}/resolve", "cg1b", {"note": "设置护栏"})
    post(client, f"cases/{walk}/close", "g1", {"note": "复查通过"})
    post(client, f"cases/{walk}/callback", "s1", {"rating": "unsatisfied", "note": "仍有摊点"})
    at(client, base + 120)
    post(client, f"cases/{walk}/resolve", "cg1", {"note": "夜间巡查"})
    post(client, f"cases/{walk}/close", "s1b", {"note": "核查通过"})
    post(client, f"cases/{walk}/callback", "s1", {"rating": "satisfied"})
    held = report(client)  # 挂起 asked for, refused, asked again, approved, resumed; 延期 left pending
    post(client, f"cases/{held}/dispatch", "s1", {"unit": "dept-cg-1"})
    post(client, f"cases/{held}/accept", "cg1")
    rid = post(client, f"cases/{held}/suspension", "cg1", {"reason": "等待产权单位"})["requests"][-1]["id"]
    post(client, f"cases/{held}/suspension/{rid}/refuse", "s1", {"note": "先行处置"})
    rid = post(client, f"cases/{held}/suspension", "cg1", {"reason": "等待产权单位确认"})["requests"][-1]["id"]
    at(client, base + 150)
    post(client, f"cases/{held}/suspension/{rid}/approve", "s1", {"note": "同意"})
    at(client, base + 200)
    post(client, f"cases/{held}/resume", "s1")
    post(client, f"cases/{held}/extension", "cg1", {"reason": "材料未到",
                                                     "until": (T + timedelta(days=3)).isoformat()})
    sid = post(client, f"cases/{held}/supervise", "ops", {"order": "三日内办结",  # 督办, answered
                                                          "until": (T + timedelta(days=2)).isoformat()})
    post(client, f"cases/{held}/supervise/{sid['requests'][-1]['id']}/reply", "cg1", {"note": "正在协调"})
    back = report(client)  # sent back by the department, left waiting at the street
    post(client, f"cases/{back}/dispatch", "s1", {"unit": "dept-cg-1"})
    post(client, f"cases/{back}/send_back", "cg1", {"reason": "非本部门职责"})
    waiting = report(client)  # never dispatched: its dispatch clock runs red
    at(client, base + 300)
    post(client, "users", "admin", {"username": "wangge01", "name": "张网格", "unit": "grid-01", "role": "operator",
                                    "password": "A-long-password-2026"})
    r = client.post("/api/v1/login", json={"username": "wangge01", "password": "A-long-password-2026"})
    assert r.status_code == 200, r.text
    post(client, "keys", "admin", {"name": "edge-b", "role": "edge", "grids": ["grid-02"]})
    for i, (grid, name, addr, lat, lon) in enumerate((("grid-01", "燃气监测 3号", "幸福路 12号", 30.27, 120.15),
                                                      ("grid-02", "水位 1号", "河滨路 8号", 30.28, 120.16))):
        r = client.put(f"/api/v1/devices/dev-{i}", json={"id": f"dev-{i}", "grid": grid, "name": name,
                                                         "address": addr, "lat": lat, "lon": lon}, headers=H("ops"))
        assert r.status_code == 200, r.text
    hb = {"edge_id": "edge-a", "version": "0.1.0", "rules_version": None, "grids": ["grid-01"], "devices": [],
          "outbox": {"pending": 0}, "sent_at": (T + timedelta(minutes=base + 300)).isoformat()}
    client.post("/api/v1/fleet/heartbeat", json=hb, headers=H("edge"))  # its shape may change: not asserted
    return [walk, held, back, waiting]


def dump(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of head's schema, in primary-key order (sessions' times dropped: see below)."""
    engine = make_engine(url)
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        with engine.connect() as conn:
            for t in Base.metadata.sorted_tables:
                out[t.name] = [dict(r._mapping) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
    finally:
        engine.dispose()
    return out


def figures(url: str, ids: list[str], tmp: Path, then: Any = None) -> dict[str, Any]:
    """What the hub serves from a database: every figure derived from its rows; `then(client)` after them, on
    the same hub (one start fewer per revision)."""
    with hub_on(url, tmp) as client:
        at(client, 24 * 60 + 400)
        got: dict[str, Any] = {"cases": {}}
        for cid in ids:
            r = client.get(f"/api/v1/cases/{cid}", headers=H("ops"))
            assert r.status_code == 200, r.text
            got["cases"][cid] = r.json()
        got["list"] = client.get("/api/v1/cases?limit=500", headers=H("ops")).json()
        for key in ("ops", "s1", "cg1", "g1"):  # each unit's view of the assessment
            got[f"assessment {key}"] = client.get("/api/v1/assessment?since=2026-11-01T00:00:00Z"
                                                  "&until=2026-12-31T00:00:00Z", headers=H(key)).json()
        got["devices"] = client.get("/api/v1/devices", headers=H("ops")).json()
        got["summary"] = client.get("/api/v1/cases/summary", headers=H("ops")).json()
        if then is not None:
            then(client)
    return got


@contextmanager
def hub_on(url: str, tmp: Path, routing: bool = True) -> Iterator[Any]:
    sla = tmp / "sla.yaml"
    sla.write_text(yaml.safe_dump(SLA, allow_unicode=True), encoding="utf-8")
    with api_client(url, KEYS, T, sla=str(sla), **({"routing": "routing.yaml"} if routing else {})) as client:
        yield client


@dataclass
class Reference:
    backend: str
    rows: dict[str, list[dict[str, Any]]]
    ids: list[str]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A maker of new empty databases on one backend."""
    made: list[Any] = []
    if request.param == "sqlite":
        d = tmp_path_factory.mktemp("dbs")

        @contextmanager
        def new() -> Iterator[str]:
            made.append(1)
            yield f"sqlite:///{d / f'db{len(made)}.sqlite'}"
    else:
        pg = request.getfixturevalue("postgres_url")

        @contextmanager
        def new() -> Iterator[str]:
            with fresh_pg_database(pg) as url:
                yield url
    new.name = request.param  # type: ignore[attr-defined]
    return new


@pytest.fixture(scope="module")
def reference(backend: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    with backend() as url:
        tmp = tmp_path_factory.mktemp("ref")
        with hub_on(url, tmp, routing=False) as client:  # gas cases at their grids, as the assessment test has them
            ids = build(client, n=30, seed=11)
        with hub_on(url, tmp) as client:  # then the stage model's departments (分拣分拨)
            ids += fill(client)
        yield Reference(backend.name, dump(url), ids)


SEEDED = {"audit_head": [{"id": 1, "seq": 0, "last_hash": "0" * 64}]}
"""Tables a migration starts with one row in (the audit chain's head, at its genesis)."""


def load_at(url: str, rev: str, rows: dict[str, list[dict[str, Any]]]) -> MetaData:
    """A database at `rev` holding `rows` in the columns that revision has; its reflected schema."""
    engine = make_engine(url)
    try:
        migrate(engine, rev)
        old = MetaData()
        old.reflect(engine)
        with engine.begin() as conn:
            for t in Base.metadata.sorted_tables:
                if t.name in old.tables and rows.get(t.name):
                    table = old.tables[t.name]
                    if t.name in SEEDED:  # the migration made its one row: the reference's replaces it
                        conn.execute(table.delete())
                    conn.execute(table.insert(), [{k: v for k, v in r.items() if k in table.c} for r in rows[t.name]])
            if engine.dialect.name == "postgresql":  # ids given explicitly: move each serial past them
                for t in Base.metadata.sorted_tables:
                    if t.name in old.tables and "id" in old.tables[t.name].c and rows.get(t.name) and isinstance(
                            rows[t.name][0]["id"], int):
                        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{t.name}', 'id'), "
                                          f"(SELECT max(id) FROM {t.name}))"))
    finally:
        engine.dispose()
    return old


def same_content_at_head(url: str, old: MetaData, rows: dict[str, list[dict[str, Any]]]) -> None:
    """A database made at head holding what the revision `old` could hold (later columns: their defaults)."""
    engine = make_engine(url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            for t in Base.metadata.sorted_tables:
                if t.name in old.tables and rows.get(t.name):
                    keep = old.tables[t.name].c
                    if t.name in SEEDED:
                        conn.execute(t.delete())
                    conn.execute(t.insert(), [{k: v for k, v in r.items() if k in keep} for r in rows[t.name]])
            if engine.dialect.name == "postgresql":
                for t in Base.metadata.sorted_tables:
                    if "id" in t.c and rows.get(t.name) and t.name in old.tables and isinstance(
                            rows[t.name][0]["id"], int):
                        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{t.name}', 'id'), "
                                          f"(SELECT max(id) FROM {t.name}))"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("rev", EARLIER)
def test_an_upgrade_from_each_earlier_revision_keeps_every_row_and_figure(rev, backend, reference, tmp_path):
    with backend() as upgraded, backend() as direct:
        old = load_at(upgraded, rev, reference.rows)
        engine = make_engine(upgraded)
        try:
            migrate(engine)
            assert inspect(engine).get_table_names() and sorted(inspect(engine).get_table_names()) == sorted(
                [*Base.metadata.tables, "alembic_version"])
        finally:
            engine.dispose()
        after = dump(upgraded)
        for name, rows in reference.rows.items():
            if name not in old.tables:
                assert after[name] == SEEDED.get(name, []), f"{name} did not exist at {rev}: it must start empty"
                continue
            cols = set(old.tables[name].c.keys())
            assert len(after[name]) == len(rows), f"{name}: {len(rows)} rows before, {len(after[name])} after"
            for before, now in zip(rows, after[name], strict=True):
                lost = {k: (before[k], now[k]) for k in cols if before[k] != now[k]}
                assert not lost, f"{name} row {before.get('id')}: changed by the upgrade from {rev}: {lost}"
        same_content_at_head(direct, old, reference.rows)
        assert after == dump(direct), f"the upgrade from {rev} differs from the same content written at head"
        want = figures(direct, reference.ids, tmp_path)
        got = figures(upgraded, reference.ids, tmp_path, then=takes_new_work)
        for key in want:
            assert got[key] == want[key], f"{key}: served differently after the upgrade from {rev}"


def takes_new_work(client: Any) -> None:
    """An upgraded hub takes an alert and an action on its case (no id clash with the rows it kept)."""
    at(client, 24 * 60 + 500)
    r = client.post("/api/v1/alerts", json={"alerts": [alert("after-upgrade", "grid-03", "gas-new",
                                                             T + timedelta(minutes=24 * 60 + 500))]},
                    headers=H("edge"))
    assert r.status_code == 200, r.text
    cid = r.json()["results"][0]["case_id"]
    assert client.post(f"/api/v1/cases/{cid}/accept", json={}, headers=H("ops")).status_code == 200


def test_the_reference_has_cases_in_every_state(reference):
    """The data set the upgrades carry is not a thin one."""
    statuses = {r["status"] for r in reference.rows["cases"]}
    assert {"open", "accepted", "resolved", "closed", "reported"} <= statuses, statuses
    actions = {r["action"] for r in reference.rows["timeline"]}
    for a in ("opened", "accept", "resolve", "close", "escalated", "reopened", "repeat", "dispatch", "reject",
              "callback", "part_signed", "part_reported", "extension_approved", "extension_requested", "sent_back",
              "suspension_approved", "suspension_refused", "supervised", "supervision_replied"):
        assert a in actions, a
    assert {r["kind"] for r in reference.rows["case_requests"]} >= {"extension", "suspension", "send_back",
                                                                   "supervision"}
    assert reference.rows["users"] and reference.rows["user_sessions"] and reference.rows["api_keys"]
    assert reference.rows["case_parts"] and len(reference.rows["devices"]) >= 2
