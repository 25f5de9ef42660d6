"""Finding cases (issue 14) on SQLite and PostgreSQL: cursor paging while cases arrive, the light filter before
the limit, search, time range, CSV/XLSX export in the user's words and time zone, today's counts, photos,
bulk acknowledge, the actions a caller may take, and refusals that name their reason by code."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from hub.boot.app import create_app
from hub.cases.scheduler import Scheduler
from hub.config import ApiKey, HubConfig, HubLimits, hash_key

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
KEYS = {"edge": ("edge", None), "ops": ("operator", "district-a"), "view-g1": ("viewer", "grid-01"),
        "ops-g3": ("operator", "grid-03"), "ops-2": ("operator", "district-a")}
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def H(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{name}"}


@pytest.fixture
def client(db_url):
    keys = [ApiKey(name=n, role=r, unit=u, hash=hash_key(f"key-{n}")) for n, (r, u) in KEYS.items()]
    cfg = HubConfig(database=db_url, keys=keys, labels=Path("labels.yaml"),
                    limits=HubLimits(max_photo_bytes=4096)).resolved(Path("configs"))
    clock = {"now": T}
    app = create_app(cfg, clock=lambda: clock["now"], run_scheduler=False)
    with TestClient(app) as c:
        c.clock = clock  # type: ignore[attr-defined]
        yield c


def alert(aid: str, grid: str = "grid-01", device: str = "gas-03", category: str = "gas_leak",
          severity: str = "critical") -> dict:
    return {"alert_id": aid, "state": "firing", "rule_id": "r", "edge_id": "edge-a", "device_id": device,
            "grid_id": grid, "kind": "sensor", "category": category, "severity": severity,
            "started_at": T.isoformat(), "observed_at": T.isoformat(), "value": 1.0, "message": f"msg {aid}",
            "labels": {}, "evidence": {}}


def send(client, *alerts: dict) -> None:
    for i in range(0, len(alerts), 500):
        r = client.post("/api/v1/alerts", json={"alerts": list(alerts[i:i + 500])}, headers=H("edge"))
        assert r.status_code == 200, r.text


def many(prefix: str, n: int) -> list[dict]:
    return [alert(f"{prefix}{i}", device=f"{prefix}-dev-{i}") for i in range(n)]


def test_cursor_walk_returns_every_case_once_while_new_cases_arrive(client):
    send(client, *many("a", 230))
    before = {c["id"] for c in client.get("/api/v1/cases?limit=5000", headers=H("ops")).json()["cases"]}
    assert len(before) == 230
    seen: list[str] = []
    devices: dict[str, str] = {}
    cursor, pages = None, 0
    while True:
        client.clock["now"] += timedelta(seconds=1)
        send(client, *many(f"new{pages}-", 7))  # new cases between every page
        url = "/api/v1/cases?limit=40" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=H("ops")).json()
        seen += [c["id"] for c in page["cases"]]
        devices.update({c["id"]: c["device"] for c in page["cases"]})
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))  # none twice
    assert before <= set(seen)  # every case that was there at the start
    # newest first: of the cases opened during the walk it met only those opened before its first page
    assert sorted(devices[c] for c in set(seen) - before) == sorted(f"new0--dev-{i}" for i in range(7))
    assert seen == sorted(seen, reverse=True)
    assert client.get("/api/v1/cases?cursor=NOT-A-CURSOR", headers=H("ops")).status_code == 422


def test_the_light_filter_is_applied_before_the_limit(client):
    send(client, *[alert(f"old{i}", device=f"old-{i}") for i in range(3)])
    client.clock["now"] += timedelta(hours=2)  # the 5-minute accept limit is long past: red
    send(client, *many("fresh", 30))
    reds = client.get("/api/v1/cases?light=red&limit=10", headers=H("ops")).json()
    assert sorted(c["device"] for c in reds["cases"]) == ["old-0", "old-1", "old-2"]
    assert reds["next_cursor"] is None
    greens = client.get("/api/v1/cases?light=green&limit=10", headers=H("ops")).json()
    assert len(greens["cases"]) == 10 and greens["next_cursor"] is not None
    rest = client.get(f"/api/v1/cases?light=green&limit=100&cursor={greens['next_cursor']}", headers=H("ops")).json()
    assert len(rest["cases"]) == 20 and not {c["id"] for c in rest["cases"]} & {c["id"] for c in greens["cases"]}


def test_search_by_id_device_place_and_text_and_a_time_range(client):
    send(client, alert("s1", device="gas-west-07"), alert("s2", grid="grid-03", device="cam-12", category="intrusion",
                                                          severity="major"))
    client.clock["now"] += timedelta(hours=1)
    r = client.post("/api/v1/cases", json={"grid": "grid-01", "category": "garbage", "title": "垃圾堆放在楼道口",
                                           "place": {"address": "西门菜市场北侧", "lat": 31.2, "lon": 121.4}},
                    headers=H("ops"))
    assert r.status_code == 201, r.text
    manual = r.json()
    assert manual["place"]["address"] == "西门菜市场北侧"

    def ids(query: str, who: str = "ops") -> set[str]:
        got = client.get(f"/api/v1/cases?{query}", headers=H(who))
        assert got.status_code == 200, got.text
        return {c["device"] or c["id"] for c in got.json()["cases"]}

    assert ids("q=WEST") == {"gas-west-07"}  # device, any case
    assert ids("q=西门") == {manual["id"]}  # place
    assert ids("q=楼道") == {manual["id"]}  # text
    assert ids(f"q={manual['id'][:14]}") == {manual["id"]}  # id
    assert ids("q=100%25") == set()  # % is a character, not a wildcard
    assert ids("q=cam") == {"cam-12"}
    assert ids("q=cam", who="view-g1") == set()  # search stays in the caller's scope
    since = (T + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    assert ids(f"since={since}") == {manual["id"]}
    assert ids(f"until={since}") == {"gas-west-07", "cam-12"}


def test_export_streams_every_case_in_words_and_local_time(client):
    send(client, *many("x", 1203))  # more than one read batch (1,000)
    r = client.get("/api/v1/cases/export?format=csv&q=x-dev", headers=H("ops"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="cases-20261123-100000')
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["案件编号", "状态", "类别", "级别", "亮灯"]
    assert len(rows) == 1 + 1203 and len({row[0] for row in rows[1:]}) == 1203
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["类别"] == "燃气泄漏" and first["状态"] == "待签收" and first["级别"] == "紧急"
    assert first["亮灯"] == "绿灯" and first["立案时间"] == "2026-11-23 10:00:00"  # Asia/Shanghai, not UTC
    x = client.get("/api/v1/cases/export?format=xlsx&lang=en&q=x-dev", headers=H("ops"))
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.content), read_only=True).active
    table = [list(r) for r in ws.iter_rows(values_only=True)]
    assert table[0][:3] == ["Case", "State", "Category"] and len(table) == 1 + 1203
    assert table[1][2] == "Gas leak"
    assert client.get("/api/v1/cases/export", headers=H("view-g1")).content.decode("utf-8-sig").count("\n") == 1204


def test_a_control_character_in_a_title_does_not_break_the_sheet(client):
    """XML 1.0, and so XLSX, cannot hold most control characters; a case title carrying one (a gateway's
    message, a phone's report) is exported with U+FFFD in its place instead of failing the download (the
    API fuzz found the export dying half-way)."""
    send(client, {**alert("ctl", device="ctl-dev"), "message": "CH4\x12 高 \x1b at ctl-dev"})
    x = client.get("/api/v1/cases/export?format=xlsx&q=ctl-dev", headers=H("ops"))
    assert x.status_code == 200
    table = [list(r) for r in load_workbook(io.BytesIO(x.content), read_only=True).active.iter_rows(values_only=True)]
    title = table[1][[h for h in table[0]].index("内容")]
    assert len(table) == 2 and "\x12" not in title and "\ufffd" in title and "高" in title, title


def test_summary_counts_today_in_the_hub_time_zone(client):
    send(client, alert("t1", device="d1"), alert("t2", device="d2"))
    ops = H("ops")
    case = client.get("/api/v1/cases", headers=ops).json()["cases"][0]["id"]
    for action, note, key in (("accept", None, "ops"), ("resolve", "valve closed", "ops"), ("close", None, "ops-2")):
        assert client.post(f"/api/v1/cases/{case}/{action}", json={"note": note}, headers=H(key)).status_code == 200
    client.clock["now"] += timedelta(minutes=10)  # the other one's accept limit (5 min) is past
    Scheduler(client.app.state.hub.store).run_due()
    s = client.get("/api/v1/cases/summary", headers=ops).json()
    assert (s["opened_today"], s["closed_today"], s["overdue_today"], s["open"]) == (2, 1, 1, 1)
    assert s["day_start"].startswith("2026-11-23T00:00:00+08:00")
    client.clock["now"] = T + timedelta(hours=15)  # 01:00 the next day in Shanghai
    s = client.get("/api/v1/cases/summary", headers=ops).json()
    assert (s["opened_today"], s["closed_today"], s["overdue_today"], s["open"]) == (0, 0, 0, 1)


def test_photos_are_stored_with_limits_and_served_with_the_case(client):
    send(client, alert("p1"))
    case = client.get("/api/v1/cases", headers=H("ops")).json()["cases"][0]["id"]
    url = f"/api/v1/cases/{case}/photos"
    r = client.post(url + "?note=现场照片", content=JPEG, headers={**H("ops"), "Content-Type": "image/jpeg"})
    assert r.status_code == 201, r.text
    detail = r.json()
    assert [p["note"] for p in detail["photos"]] == ["现场照片"] and detail["photos"][0]["actor"] == "ops"
    got = client.get(detail["photos"][0]["url"], headers=H("view-g1"))
    assert got.status_code == 200 and got.content == JPEG and got.headers["content-type"] == "image/jpeg"
    assert detail["timeline"][-1]["action"] == "photo"
    bad = client.post(url, content=PNG, headers={**H("ops"), "Content-Type": "image/jpeg"})  # lies about its type
    assert bad.status_code == 415 and bad.json()["code"] == "photo_type"
    bad = client.post(url, content=b"%PDF-1.4", headers={**H("ops"), "Content-Type": "application/pdf"})
    assert bad.status_code == 415
    big = JPEG + bytes(5000)
    bad = client.post(url, content=big, headers={**H("ops"), "Content-Type": "image/jpeg"})
    assert bad.status_code == 413 and bad.json()["params"]["limit"] == 4096
    assert client.post(url, content=JPEG, headers={**H("view-g1"), "Content-Type": "image/jpeg"}).status_code == 403
    assert client.post(url, content=JPEG, headers={**H("ops-g3"), "Content-Type": "image/jpeg"}).status_code == 404
    assert len(client.get(f"/api/v1/cases/{case}", headers=H("ops")).json()["photos"]) == 1


def test_bulk_acknowledge_refusal_codes_and_allowed_actions(client):
    send(client, *[alert(f"b{i}", device=f"b-{i}") for i in range(4)])
    ids = [c["id"] for c in client.get("/api/v1/cases", headers=H("ops")).json()["cases"]]
    ops = H("ops")
    detail = client.get(f"/api/v1/cases/{ids[0]}", headers=ops).json()
    assert detail["actions"] == ["dispatch", "accept", "hold", "transfer", "comment"]  # the district re-dispatches
    assert client.get(f"/api/v1/cases/{ids[0]}", headers=H("view-g1")).json()["actions"] == []
    assert client.post(f"/api/v1/cases/{ids[0]}/accept", headers=ops).status_code == 200
    r = client.post("/api/v1/cases/bulk/accept", json={"ids": [*ids, "0000nosuchcase"]}, headers=ops)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["done"] == ids[1:]
    assert out["refused"][ids[0]]["code"] == "wrong_state"
    assert out["refused"][ids[0]]["params"] == {"action": "accept", "status": "accepted", "allowed": ["open"]}
    assert out["refused"]["0000nosuchcase"]["code"] == "not_found"
    refused = client.post(f"/api/v1/cases/{ids[1]}/resolve", json={}, headers=ops)
    assert refused.status_code == 409
    assert refused.json() == {"detail": "resolve needs a note saying what was done", "code": "needs_note",
                              "params": {"action": "resolve"}}
    assert client.post("/api/v1/cases/bulk/accept", json={"ids": ids}, headers=H("view-g1")).status_code == 403
    g3 = client.post("/api/v1/cases/bulk/comment", json={"ids": ids[:1], "note": "x"}, headers=H("ops-g3")).json()
    assert g3["done"] == [] and g3["refused"][ids[0]]["code"] == "not_found"  # outside its subtree: unseen


def test_labels_name_categories_from_configuration(client):
    t = client.get("/api/v1/labels", headers=H("view-g1")).json()
    assert t["category"]["gas_leak"] == {"zh-CN": "燃气泄漏", "en": "Gas leak"}
    assert t["category"]["garbage"]["zh-CN"] == "垃圾堆放"  # from configs/labels.yaml only
    assert t["light"]["red"]["zh-CN"] == "红灯" and t["action"]["accept"]["zh-CN"] == "签收"
    assert client.get("/api/v1/labels").status_code == 401
