"""The hub's fleet on SQLite and PostgreSQL, with an injected clock: the device registry (places on cases,
CSV/XLSX in and out, scopes), rule versions and staged deploys, heartbeats and the agent watchdog, and
maintenance windows that hold alerts and release them at their end."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridwatch.ruletools import EdgeRuleTools
from hub.boot.app import create_app
from hub.config import ApiKey, HubConfig, hash_key

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Monday
KEYS = {"edge": ("edge", None), "edge-s2": ("edge", None), "ops": ("operator", "district-a"),
        "ops-g3": ("operator", "grid-03"), "view-g1": ("viewer", "grid-01"), "admin": ("admin", None),
        "ops-s1": ("operator", "street-1")}
RULES = "rules:\n  - id: gas-high\n    match: {metric: ch4_ppm}\n    when: {above: 5000}\n    severity: critical\n" \
        "    category: gas_leak\n"


def H(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{name}"}


@pytest.fixture
def client(db_url):
    keys = [ApiKey(name=n, role=r, unit=u, hash=hash_key(f"key-{n}"),
                   grids=["grid-03", "grid-07"] if n == "edge-s2" else None) for n, (r, u) in KEYS.items()]
    cfg = HubConfig(database=db_url, keys=keys, fleet={"heartbeat_limit": 30}).resolved(Path("configs"))
    clock = {"now": T}
    app = create_app(cfg, clock=lambda: clock["now"], run_scheduler=False, rule_tools=EdgeRuleTools())
    with TestClient(app) as c:
        c.clock = clock  # type: ignore[attr-defined]
        c.scheduler = app.state.scheduler  # type: ignore[attr-defined]
        yield c


def alert(aid: str, device: str = "gas-03", grid: str = "grid-01", state: str = "firing", at: datetime = T,
          rule: str = "gas-high") -> dict:
    return {"alert_id": aid, "state": state, "rule_id": rule, "edge_id": "edge-a", "device_id": device,
            "grid_id": grid, "kind": "sensor", "category": "gas_leak", "severity": "critical",
            "observed_at": at.isoformat(), "message": "m"}


def device(did: str, grid: str = "grid-01", **kw) -> dict:
    return {"id": did, "grid": grid, "kind": "sensor", **kw}


def run_scheduler(c, at: datetime) -> None:
    c.clock["now"] = at
    c.scheduler._housekept = None
    c.scheduler.run_due(at)


# ---- the registry --------------------------------------------------------------------------------------
def test_registry_places_reach_cases_and_scopes_hold(client):
    c = client
    r = c.put("/api/v1/devices/gas-03", headers=H("ops"),
              json=device("gas-03", name="3号燃气探测器", lat=30.2821, lon=120.1533, address="和平路12号地下车库"))
    assert r.status_code == 200, r.text
    assert c.put("/api/v1/devices/gas-09", headers=H("ops-g3"), json=device("gas-09")).status_code == 403
    assert c.put("/api/v1/devices/gas-09", headers=H("view-g1"), json=device("gas-09")).status_code == 403
    assert c.put("/api/v1/devices/gas-09", headers=H("ops"), json=device("gas-09", grid="grid-99")).status_code == 422
    assert c.put("/api/v1/devices/gas-09", headers=H("ops"), json=device("other")).status_code == 422
    assert c.put("/api/v1/devices/cam-3", headers=H("ops-g3"), json=device("cam-3", grid="grid-03",
                                                                        kind="camera")).status_code == 200
    r = c.post("/api/v1/alerts", json={"alerts": [alert("a1")]}, headers=H("edge"))
    case = c.get(f"/api/v1/cases/{r.json()['results'][0]['case_id']}", headers=H("ops")).json()
    assert case["place"] == {"lat": 30.2821, "lon": 120.1533, "address": "和平路12号地下车库",
                             "name": "3号燃气探测器"}
    # an alert that carries its place (an agent holding the registry) keeps it
    placed = {**alert("a2", device="gas-77"), "place": {"lat": 30.0, "lon": 120.0, "address": "x", "name": ""}}
    r = c.post("/api/v1/alerts", json={"alerts": [placed]}, headers=H("edge"))
    assert c.get(f"/api/v1/cases/{r.json()['results'][0]['case_id']}", headers=H("ops")).json()["place"]["lat"] == 30.0
    # viewers see their grid's devices only; search reaches names and addresses; states show
    seen = c.get("/api/v1/devices", headers=H("view-g1")).json()
    assert [d["id"] for d in seen["devices"]] == ["gas-03"] and seen["devices"][0]["state"] == "alarm"
    assert [d["id"] for d in c.get("/api/v1/devices?q=地下车库", headers=H("ops")).json()["devices"]] == ["gas-03"]
    assert c.get("/api/v1/devices?q=cam", headers=H("view-g1")).json()["total"] == 0
    assert c.get("/api/v1/devices?q=cam", headers=H("ops")).json()["devices"][0]["state"] == "ok"
    assert c.delete("/api/v1/devices/cam-3", headers=H("view-g1")).status_code == 403
    assert c.delete("/api/v1/devices/gas-03", headers=H("ops-g3")).status_code == 403
    assert c.delete("/api/v1/devices/cam-3", headers=H("ops-g3")).status_code == 204
    assert c.delete("/api/v1/devices/cam-3", headers=H("ops-g3")).status_code == 404


def test_import_and_export_csv_and_xlsx(client):
    c = client
    csv = ("id,grid,kind,name,lat,lon,address,vendor\n"
           "gas-01,grid-01,sensor,一号探测器,30.281,120.151,和平路1号,汉威\n"
           "cam-07,grid-03,camera,七号摄像机,30.276,120.153,光明路7号,海康威视\n")
    r = c.post("/api/v1/devices/import", content=csv.encode(), headers={**H("ops"), "Content-Type": "text/csv"})
    assert r.json() == {"created": 2, "updated": 0}, r.text
    bad = "id,grid,lat\ngas-02,grid-01,95\nbad id,grid-01,1\ngas-03,grid-42,1\ngas-03,grid-01,1\n"
    r = c.post("/api/v1/devices/import", content=bad.encode(), headers={**H("ops"), "Content-Type": "text/csv"})
    assert r.status_code == 422
    problems = r.json()["detail"]
    assert any(p.startswith("row 2: lat:") for p in problems) and any(p.startswith("row 3: id:") for p in problems)
    assert any("row 4: grid: 'grid-42'" in p for p in problems), problems
    assert any("row 5: id: 'gas-03' again (first on row 4)" in p for p in problems), problems
    assert c.get("/api/v1/devices", headers=H("ops")).json()["total"] == 2  # all rows or none
    r = c.post("/api/v1/devices/import", content=csv.encode(), headers={**H("ops-s1"), "Content-Type": "text/csv"})
    assert r.status_code == 403  # grid-03 lies outside street-1
    assert c.post("/api/v1/devices/import", content=b"x", headers={**H("ops"), "Content-Type": "image/png"}
                  ).status_code == 415
    out = c.get("/api/v1/devices/export?format=csv", headers=H("ops"))
    assert out.headers["content-type"].startswith("text/csv") and "七号摄像机" in out.content.decode("utf-8-sig")
    from openpyxl import load_workbook

    x = c.get("/api/v1/devices/export?format=xlsx", headers=H("view-g1"))
    rows = list(load_workbook(io.BytesIO(x.content)).worksheets[0].iter_rows(values_only=True))
    assert rows[0][:3] == ("id", "kind", "grid") and [r[0] for r in rows[1:]] == ["gas-01"]  # the viewer's grid
    # the exported sheet goes back in unchanged (edit in a spreadsheet, import again)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    r = c.post("/api/v1/devices/import", content=x.content, headers={**H("ops"), "Content-Type": xlsx})
    assert r.json() == {"created": 0, "updated": 1}, r.text


# ---- rule sets -----------------------------------------------------------------------------------------
def test_rules_checked_saved_diffed_and_deployed_in_stages(client):
    c = client
    broken = RULES.replace("above: 5000", "above: lots")
    r = c.post("/api/v1/rules/check", json={"text": broken}, headers=H("view-g1"))
    assert r.json()["ok"] is False and r.json()["problems"][0].startswith("rules.yaml:rules[0].when"), r.json()
    assert "(line 4)" in r.json()["problems"][0]
    r = c.post("/api/v1/rules", json={"text": broken}, headers=H("ops"))
    assert r.status_code == 422 and "rules[0].when" in r.json()["detail"][0]
    assert c.post("/api/v1/rules", json={"text": RULES}, headers=H("ops-s1")).status_code == 403  # not the district
    v1 = c.post("/api/v1/rules", json={"text": RULES, "note": "first"}, headers=H("ops")).json()
    v2 = c.post("/api/v1/rules", json={"text": RULES.replace("5000", "4000")}, headers=H("admin")).json()
    assert (v1["version"], v1["rules"], v1["author"], v2["version"]) == (1, 1, "ops", 2)
    d = c.get("/api/v1/rules/versions/2/diff", headers=H("view-g1")).text
    assert "-    when: {above: 5000}" in d and "+    when: {above: 4000}" in d
    assert c.get("/api/v1/rules/versions/9", headers=H("ops")).status_code == 404

    def wanted(grids: str, key: str = "edge") -> int | None:
        body = c.get(f"/api/v1/fleet/assignment?grids={grids}", headers=H(key)).json()
        return body["rules"]["version"] if body["rules"] else None

    assert wanted("grid-01") is None  # nothing deployed yet: agents run their files
    assert c.post("/api/v1/rules/deploy", json={"version": 1}, headers=H("ops")).status_code == 201
    assert c.post("/api/v1/rules/deploy", json={"version": 2, "grids": ["grid-03"]},
                  headers=H("ops")).status_code == 201
    assert (wanted("grid-01,grid-02"), wanted("grid-03"), wanted("")) == (1, 2, 2)
    assert c.get("/api/v1/fleet/assignment?grids=grid-01", headers=H("edge-s2")).status_code == 403  # not its grids
    assert wanted("", "edge-s2") == 2  # a key bound to grids gets its grids' version
    body = c.get("/api/v1/fleet/assignment?grids=grid-03&rules=2", headers=H("edge")).json()
    assert body["rules"] is None  # it has it already
    c.post("/api/v1/rules/deploy", json={"version": 1}, headers=H("ops"))  # roll back everywhere
    assert wanted("grid-03") == 1
    assert c.post("/api/v1/rules/deploy", json={"version": 7}, headers=H("ops")).status_code == 404
    assert c.post("/api/v1/rules/deploy", json={"version": 1, "grids": ["nowhere"]},
                  headers=H("ops")).status_code == 422


def test_long_poll_answers_when_a_deploy_lands(client):
    import threading
    import time

    c = client
    c.post("/api/v1/rules", json={"text": RULES}, headers=H("ops"))
    etag = c.get("/api/v1/fleet/assignment", headers=H("edge")).json()["devices"]["etag"]
    got: dict = {}

    def poll() -> None:
        t0 = time.monotonic()
        got["body"] = c.get(f"/api/v1/fleet/assignment?devices={etag}&wait=20", headers=H("edge")).json()
        got["took"] = time.monotonic() - t0

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)
    assert "body" not in got  # waiting: nothing new
    c.post("/api/v1/rules/deploy", json={"version": 1}, headers=H("ops"))
    th.join(10)
    assert got["body"]["rules"]["version"] == 1 and got["took"] < 3, got


# ---- agents ----------------------------------------------------------------------------------------------
def test_silent_agent_opens_one_case_and_its_devices_become_unknown(client):
    c = client
    for d in (device("gas-03"), device("gas-04"), device("cam-3", grid="grid-03")):
        c.put(f"/api/v1/devices/{d['id']}", json=d, headers=H("ops"))
    beat = {"edge_id": "edge-a", "grids": ["grid-01", "grid-02"], "rule_version": None, "outbox_depth": 3}
    assert c.post("/api/v1/fleet/heartbeat", json=beat, headers=H("edge")).status_code == 200
    assert c.post("/api/v1/fleet/heartbeat", json={"edge_id": "edge-b", "grids": ["grid-03"]},
                  headers=H("edge-s2")).status_code == 200
    assert c.post("/api/v1/fleet/heartbeat", json={**beat, "edge_id": "x"}, headers=H("edge-s2")).status_code == 403
    assert c.post("/api/v1/fleet/heartbeat", json=beat, headers=H("ops")).status_code == 403
    run_scheduler(c, T + timedelta(seconds=29))
    c.post("/api/v1/fleet/heartbeat", json={"edge_id": "edge-b", "grids": ["grid-03"]}, headers=H("edge-s2"))
    assert c.get("/api/v1/cases?category=agent_offline", headers=H("ops")).json()["cases"] == []
    run_scheduler(c, T + timedelta(seconds=31))  # edge-a is past the limit, edge-b beat 2 s ago
    run_scheduler(c, T + timedelta(seconds=45))  # again: still one case
    cases = c.get("/api/v1/cases?category=agent_offline", headers=H("ops")).json()["cases"]
    assert len(cases) == 1 and cases[0]["device"] == "edge-a" and cases[0]["owner"] == "district-a", cases
    agents = {a["id"]: a for a in c.get("/api/v1/agents", headers=H("ops")).json()}
    assert (agents["edge-a"]["state"], agents["edge-b"]["state"], agents["edge-a"]["outbox_depth"]) == (
        "offline", "late", 3)  # edge-b: 16 s since its beat, over half the limit
    states = {d["id"]: d["state"] for d in c.get("/api/v1/devices", headers=H("ops")).json()["devices"]}
    assert states == {"gas-03": "unknown", "gas-04": "unknown", "cam-3": "ok"}
    # back: the case clears, the devices are known again
    c.clock["now"] = T + timedelta(seconds=60)
    c.post("/api/v1/fleet/heartbeat", json=beat, headers=H("edge"))
    case = c.get(f"/api/v1/cases/{cases[0]['id']}", headers=H("ops")).json()
    assert case["cleared_at"] is not None and [e["action"] for e in case["timeline"]][-1] == "condition_cleared"
    states = {d["id"]: d["state"] for d in c.get("/api/v1/devices", headers=H("ops")).json()["devices"]}
    assert set(states.values()) == {"ok"}


# ---- maintenance ---------------------------------------------------------------------------------------
def test_maintenance_window_holds_alerts_and_opens_the_case_at_its_end(client):
    c = client
    c.put("/api/v1/devices/gas-03", json=device("gas-03"), headers=H("ops"))
    w = {"scope": "device", "target": "gas-03", "reason": "更换探头", "starts_at": T.isoformat(),
         "ends_at": (T + timedelta(hours=1)).isoformat()}
    assert c.post("/api/v1/maintenance", json={**w, "target": "nope"}, headers=H("ops")).status_code == 422
    assert c.post("/api/v1/maintenance", json=w, headers=H("ops-g3")).status_code == 403
    assert c.post("/api/v1/maintenance", json={**w, "ends_at": None}, headers=H("ops")).status_code == 422
    win = c.post("/api/v1/maintenance", json=w, headers=H("ops")).json()
    assert win["active"] is True
    grid_w = {**w, "scope": "grid", "target": "grid-02", "reason": "管网检修"}
    c.post("/api/v1/maintenance", json=grid_w, headers=H("ops"))
    at = T + timedelta(minutes=5)
    c.clock["now"] = at
    batch = [alert("held-1", at=at), alert("held-2", device="gas-05", grid="grid-02", at=at),
             alert("open-1", device="gas-06", at=at)]
    r = c.post("/api/v1/alerts", json={"alerts": batch}, headers=H("edge")).json()["results"]
    assert [x["status"] for x in r] == ["held", "held", "created"], r
    again = c.post("/api/v1/alerts", json={"alerts": batch[:1]}, headers=H("edge")).json()["results"]
    assert again[0]["status"] == "held"  # a resend is still held, not a case
    # held-2's condition clears inside the window; held-1's still holds when it ends
    c.post("/api/v1/alerts", json={"alerts": [alert("held-2", device="gas-05", grid="grid-02", state="resolved",
                                                    at=at + timedelta(minutes=5))]}, headers=H("edge"))
    assert {x["device"] for x in c.get("/api/v1/cases", headers=H("ops")).json()["cases"]} == {"gas-06"}
    listed = {x["target"]: x for x in c.get("/api/v1/maintenance", headers=H("ops")).json()}
    assert listed["gas-03"]["held"] == 1 and listed["grid-02"]["held"] == 1
    states = {d["id"]: d["state"] for d in c.get("/api/v1/devices", headers=H("ops")).json()["devices"]}
    assert states["gas-03"] == "maintenance"
    run_scheduler(c, T + timedelta(minutes=59))
    assert len(c.get("/api/v1/cases", headers=H("ops")).json()["cases"]) == 1
    run_scheduler(c, T + timedelta(hours=1, seconds=1))
    cases = {x["device"]: x for x in c.get("/api/v1/cases", headers=H("ops")).json()["cases"]}
    assert set(cases) == {"gas-06", "gas-03"}  # gas-05 resolved inside its window: no case
    opened = c.get(f"/api/v1/cases/{cases['gas-03']['id']}", headers=H("ops")).json()["timeline"][0]
    assert opened["action"] == "opened" and opened["detail"]["maintenance"]["reason"] == "更换探头"
    # the alert's resolve after the release reaches the case as usual
    r = c.post("/api/v1/alerts", json={"alerts": [alert("held-1", state="resolved", at=T + timedelta(hours=2))]},
               headers=H("edge")).json()["results"]
    assert r[0]["status"] == "updated" and r[0]["case_id"] == cases["gas-03"]["id"]


def test_recurring_window_and_cancel(client):
    c = client
    # every night 22:00-06:00 Shanghai time for a rule
    w = {"scope": "rule", "target": "gas-high", "reason": "夜间施工", "starts_at": T.isoformat(),
         "recurrence": {"days": [1, 2, 3, 4, 5], "start": "22:00", "end": "06:00"}}
    assert c.post("/api/v1/maintenance", json=w, headers=H("ops-s1")).status_code == 403  # rules: the district
    win = c.post("/api/v1/maintenance", json=w, headers=H("ops")).json()
    assert win["active"] is False  # 10:00 local
    night = T + timedelta(hours=13)  # Monday 23:00 local
    c.clock["now"] = night
    r = c.post("/api/v1/alerts", json={"alerts": [alert("n1", at=night)]}, headers=H("edge")).json()["results"]
    assert r[0]["status"] == "held"
    run_scheduler(c, T + timedelta(hours=19, minutes=59))  # Tuesday 05:59 local: still in force
    assert c.get("/api/v1/cases", headers=H("ops")).json()["cases"] == []
    run_scheduler(c, T + timedelta(hours=20))  # 06:00: released
    assert len(c.get("/api/v1/cases", headers=H("ops")).json()["cases"]) == 1
    saturday = T + timedelta(days=5, hours=13)  # Saturday 23:00: not a listed day
    c.clock["now"] = saturday
    r = c.post("/api/v1/alerts", json={"alerts": [alert("n2", device="gas-09", at=saturday)]},
               headers=H("edge")).json()["results"]
    assert r[0]["status"] == "created"
    # cancelling releases at once
    w2 = {"scope": "grid", "target": "grid-07", "reason": "检修", "starts_at": saturday.isoformat(),
          "ends_at": (saturday + timedelta(days=1)).isoformat()}
    win2 = c.post("/api/v1/maintenance", json=w2, headers=H("ops")).json()
    r = c.post("/api/v1/alerts", json={"alerts": [alert("n3", device="x-1", grid="grid-07", at=saturday)]},
               headers=H("edge")).json()["results"]
    assert r[0]["status"] == "held"
    assert c.post(f"/api/v1/maintenance/{win2['id']}/cancel", headers=H("view-g1")).status_code == 403
    assert c.post(f"/api/v1/maintenance/{win2['id']}/cancel", headers=H("ops")).status_code == 200
    assert c.post(f"/api/v1/maintenance/{win2['id']}/cancel", headers=H("ops")).status_code == 409
    run_scheduler(c, saturday + timedelta(seconds=1))
    assert "x-1" in {x["device"] for x in c.get("/api/v1/cases", headers=H("ops")).json()["cases"]}


def test_map_has_grids_devices_and_case_markers(client):
    c = client
    c.put("/api/v1/devices/gas-03", json=device("gas-03", lat=30.282, lon=120.153), headers=H("ops"))
    c.put("/api/v1/devices/cam-3", json=device("cam-3", grid="grid-03", lat=30.277, lon=120.152), headers=H("ops"))
    c.post("/api/v1/alerts", json={"alerts": [alert("a1")]}, headers=H("edge"))
    m = c.get("/api/v1/map", headers=H("ops")).json()
    assert {g["id"] for g in m["grids"]} == {"grid-01", "grid-02", "grid-03", "grid-07"} and m["tiles"] is None
    assert {d["id"]: d["state"] for d in m["devices"]} == {"gas-03": "alarm", "cam-3": "ok"}
    assert [(x["lat"], x["lon"], x["light"]) for x in m["cases"]] == [(30.282, 120.153, "green")]
    mine = c.get("/api/v1/map", headers=H("view-g1")).json()
    assert [g["id"] for g in mine["grids"]] == ["grid-01"] and [d["id"] for d in mine["devices"]] == ["gas-03"]
