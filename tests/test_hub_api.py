"""The hub API on SQLite and PostgreSQL: keys and roles, scopes, alerts in, case actions, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.boot.app import create_app
from hub.config import ApiKey, HubConfig, hash_key
from tests.hubkit import api_client

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
KEYS = {"edge": ("edge", None), "ops": ("operator", "district-a"), "ops-g3": ("operator", "grid-03"),
        "view-g1": ("viewer", "grid-01"), "view-s2": ("viewer", "street-2"), "admin": ("admin", None)}


def H(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{name}"}


@pytest.fixture
def client(db_url):
    with api_client(db_url, KEYS, T) as c:
        yield c


def alert(aid: str, grid: str = "grid-01", device: str = "gas-03", state: str = "firing") -> dict:
    return {"alert_id": aid, "state": state, "rule_id": "gas-high", "edge_id": "edge-a", "device_id": device,
            "grid_id": grid, "kind": "sensor", "category": "gas_leak", "severity": "critical",
            "started_at": T.isoformat(), "observed_at": T.isoformat(), "value": 1.0, "message": "m",
            "labels": {}, "evidence": {}}


def test_keys_and_roles(client):
    assert client.post("/api/v1/alerts", json={"alerts": []}).status_code == 401
    assert client.post("/api/v1/alerts", json={"alerts": []}, headers=H("nobody")).status_code == 401
    assert client.post("/api/v1/alerts", json={"alerts": []}, headers=H("view-g1")).status_code == 403
    assert client.get("/api/v1/cases", headers=H("edge")).status_code == 403
    assert client.get("/healthz").json() == {"status": "ok"}


def test_malformed_alert_gets_422_naming_the_field(client):
    bad = {**alert("a1"), "severity": "huge", "value": "not a number"}
    r = client.post("/api/v1/alerts", json={"alerts": [alert("a0"), bad]}, headers=H("edge"))
    assert r.status_code == 422
    where = {tuple(e["loc"]) for e in r.json()["detail"]}
    assert ("body", "alerts", 1, "severity") in where and ("body", "alerts", 1, "value") in where
    missing = {k: v for k, v in alert("a2").items() if k != "grid_id"}
    r = client.post("/api/v1/alerts", json={"alerts": [missing]}, headers=H("edge"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "alerts", 0, "grid_id"]
    assert client.get("/api/v1/cases", headers=H("ops")).json()["cases"] == []  # nothing of the batch taken


def test_openapi_documents_the_alert_and_case_schemas(client):
    spec = client.get("/openapi.json", headers=H("ops")).json()
    schemas = spec["components"]["schemas"]
    alert_schema = schemas["Alert"]
    assert {"alert_id", "state", "severity", "observed_at", "grid_id", "device_id"} <= set(alert_schema["required"])
    assert alert_schema["properties"]["severity"]["enum"] == ["info", "minor", "major", "critical"]
    body = spec["paths"]["/api/v1/alerts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/AlertBatch")
    ok = spec["paths"]["/api/v1/alerts"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/AlertResults")
    for path, model in (("/api/v1/cases", "CaseList"), ("/api/v1/cases/{case_id}", "CaseDetail"),
                        ("/api/v1/me", "MeOut")):
        got = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert got["$ref"].endswith("/" + model), path
    assert {"clock", "status", "owner"} <= set(schemas["CasePublic"]["properties"])
    assert schemas["CasePublic"]["properties"]["status"]["enum"] == ["reported", "open", "accepted", "resolved",
                                                                     "verified", "on_hold",
                                                                     "closed"]


def test_alerts_in_and_case_read_with_clock(client):
    r = client.post("/api/v1/alerts", json={"alerts": [alert("a1"), alert("a1")]}, headers=H("edge")).json()
    assert [x["status"] for x in r["results"]] == ["created", "duplicate"]
    case_id = r["results"][0]["case_id"]
    client.clock["now"] = T + timedelta(minutes=3)
    c = client.get(f"/api/v1/cases/{case_id}", headers=H("ops")).json()
    assert c["clock"]["light"] == "yellow" and c["clock"]["stage"] == "accept" and c["owner_level"] == "grid"
    assert c["timeline"][0]["action"] == "opened" and c["timeline"][0]["actor"] == "edge"
    m = client.get("/metrics", headers=H("ops")).text
    assert 'gridwatch_hub_alerts_total{status="created"} 1.0' in m
    assert 'gridwatch_hub_alerts_total{status="duplicate"} 1.0' in m
    assert 'gridwatch_hub_cases{status="open"} 1.0' in m


def test_scopes_hide_other_subtrees(client):
    ids = {}
    for aid, grid in (("a1", "grid-01"), ("a3", "grid-03")):
        ids[grid] = client.post("/api/v1/alerts", json={"alerts": [alert(aid, grid=grid)]},
                                headers=H("edge")).json()["results"][0]["case_id"]
    seen = {c["grid"] for c in client.get("/api/v1/cases", headers=H("view-g1")).json()["cases"]}
    assert seen == {"grid-01"}
    assert {c["grid"] for c in client.get("/api/v1/cases", headers=H("view-s2")).json()["cases"]} == {"grid-03"}
    r = client.get(f"/api/v1/cases/{ids['grid-03']}", headers=H("view-g1"))
    assert r.status_code == 404 and "grid-03" not in r.text
    assert client.post(f"/api/v1/cases/{ids['grid-01']}/accept", headers=H("ops-g3")).status_code == 404
    assert client.post(f"/api/v1/cases/{ids['grid-01']}/accept", headers=H("view-g1")).status_code == 403


def test_actions_and_conflicts(client):
    case_id = client.post("/api/v1/alerts", json={"alerts": [alert("a1")]},
                          headers=H("edge")).json()["results"][0]["case_id"]
    r = client.post(f"/api/v1/cases/{case_id}/resolve", json={"note": "x"}, headers=H("ops"))
    assert r.status_code == 409 and "cannot resolve a case that is open" in r.json()["detail"]
    assert client.post(f"/api/v1/cases/{case_id}/accept", headers=H("ops")).json()["status"] == "accepted"
    assert client.post(f"/api/v1/cases/{case_id}/hold", json={"note": "waiting"},
                       headers=H("ops")).json()["clock"]["paused"] is True
    assert client.post(f"/api/v1/cases/{case_id}/resume", headers=H("ops")).json()["status"] == "accepted"
    r = client.post(f"/api/v1/cases/{case_id}/transfer", json={"unit": "grid-03"}, headers=H("ops")).json()
    assert r["owner"] == "grid-03"
    assert client.post(f"/api/v1/cases/{case_id}/fly", headers=H("ops")).status_code == 404
    actions = [e["action"] for e in client.get(f"/api/v1/cases/{case_id}", headers=H("admin")).json()["timeline"]]
    assert actions == ["opened", "accept", "hold", "resume", "transfer"]


def test_manual_report_uses_the_2_3_10_tiers(client):
    r = client.post("/api/v1/cases", json={"grid": "grid-03", "category": "road_damage", "tier": "important",
                                           "title": "pothole on Guangming Rd"}, headers=H("ops-g3"))
    assert r.status_code == 201
    c = r.json()
    assert c["manual"] and c["policy"] == "manual-important" and c["owner"] == "grid-03"
    assert client.post("/api/v1/cases", json={"grid": "grid-01", "category": "x", "title": "t"},
                       headers=H("ops-g3")).status_code == 403
    assert client.post("/api/v1/cases", json={"grid": "community-11", "category": "x", "title": "t"},
                       headers=H("ops")).status_code == 409
    store = client.app.state.hub.store
    case, _, _ = store.get(c["id"])
    assert case.policy["limits"]["resolve"] == "3d"


def test_evidence_snapshot_is_stored_and_served(client):
    import base64

    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 100 + b"\xff\xd9"
    a = alert("e1", grid="grid-01")
    a["evidence"] = {"snapshot_jpeg_b64": base64.b64encode(jpeg).decode()}
    bad = alert("e2", grid="grid-01")
    bad["evidence"] = {"snapshot_jpeg_b64": base64.b64encode(b"GIF89a").decode()}
    results = client.post("/api/v1/alerts", json={"alerts": [a, bad]}, headers=H("edge")).json()["results"]
    case_id = results[0]["case_id"]
    c = client.get(f"/api/v1/cases/{case_id}", headers=H("view-g1")).json()
    assert c["evidence"] == [f"/api/v1/cases/{case_id}/evidence/1"] and c["alert_count"] == 2
    assert c["alerts"][1]["evidence"]["stored"] == "not a JPEG"
    r = client.get(c["evidence"][0], headers=H("view-g1"))
    assert r.status_code == 200 and r.content == jpeg and r.headers["content-type"] == "image/jpeg"
    assert client.get(c["evidence"][0], headers=H("view-s2")).status_code == 404


def test_stats_counts_repeats_and_scope(client):
    def fire(aid: str, grid: str, device: str, at: datetime) -> str:
        client.clock["now"] = at
        a = alert(aid, grid=grid, device=device)
        a["observed_at"] = at.isoformat()
        return client.post("/api/v1/alerts", json={"alerts": [a]}, headers=H("edge")).json()["results"][0]["case_id"]

    first = fire("s1", "grid-01", "gas-1", T - timedelta(days=5))
    for action, note, key in (("accept", None, "ops"), ("resolve", "fixed", "ops"), ("close", None, "admin")):
        assert client.post(f"/api/v1/cases/{first}/{action}", json={"note": note}, headers=H(key)).status_code == 200
    again = fire("s2", "grid-01", "gas-1", T - timedelta(days=2))  # same place and category: a repeat case
    fire("s3", "grid-03", "gas-9", T - timedelta(days=1))
    client.clock["now"] = T
    st = client.get("/api/v1/stats", headers=H("ops")).json()
    assert st["total"] == 3 and st["by_category"] == {"gas_leak": 3}
    assert st["by_grid"] == {"grid-01": 2, "grid-03": 1}
    assert st["repeated_devices"] == [{"device": "gas-1", "cases": 2}]
    assert [r["case_id"] for r in st["repeat_cases"]] == [again]
    assert sum(st["by_hour"]) == 3 and st["by_hour"][10] == 3  # 02:00 UTC is 10:00 in Asia/Shanghai
    mine = client.get("/api/v1/stats", headers=H("view-s2")).json()
    assert mine["by_grid"] == {"grid-03": 1}


def test_same_batch_twice_and_concurrently_creates_each_case_once(client):
    import threading

    batch = {"alerts": [alert(f"c{i}", device=f"dev-{i % 5}") for i in range(20)]}
    results: list = []

    def send() -> None:
        r = client.post("/api/v1/alerts", json=batch, headers=H("edge"))
        results.append(r.json()["results"] if r.status_code == 200 else r.status_code)

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    send()
    cases = client.get("/api/v1/cases", headers=H("admin")).json()["cases"]
    assert len(cases) == 5 and sorted(c["alert_count"] for c in cases) == [4] * 5
    assert len(results) == 4 and all(isinstance(r, list) for r in results), results
    for r in results:
        assert len({x["case_id"] for x in r}) == 5


ENDPOINTS = [("post", "/api/v1/alerts", {"alerts": []}, ("edge", "admin")),
             ("get", "/api/v1/cases", None, ("operator", "viewer", "admin")),
             ("get", "/api/v1/cases/{id}", None, ("operator", "viewer", "admin")),
             ("post", "/api/v1/cases/{id}/comment", {"note": "hi"}, ("operator", "admin")),
             ("post", "/api/v1/cases", {"grid": "grid-01", "category": "x", "title": "t"}, ("operator", "admin")),
             ("get", "/api/v1/cases/{id}/evidence/1", None, ("operator", "viewer", "admin")),
             ("get", "/api/v1/stats", None, ("operator", "viewer", "admin"))]


@pytest.mark.parametrize(("method", "path", "body", "roles"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_every_endpoint_refuses_missing_key_wrong_role_and_out_of_scope(client, method, path, body, roles):
    case_id = client.post("/api/v1/alerts", json={"alerts": [alert("z1", grid="grid-01")]},
                          headers=H("edge")).json()["results"][0]["case_id"]
    url = path.replace("{id}", case_id)
    kw = {"json": body} if body is not None else {}
    assert getattr(client, method)(url, **kw).status_code == 401
    wrong = next(n for n, (r, _) in KEYS.items() if r not in roles)
    assert getattr(client, method)(url, headers=H(wrong), **kw).status_code == 403
    if "{id}" in path or path == "/api/v1/cases" and method == "post":
        outsider = "ops-g3" if "operator" in roles else "view-s2"
        r = getattr(client, method)(url, headers=H(outsider), **kw)
        assert r.status_code in (403, 404) and case_id not in r.text
    elif path in ("/api/v1/cases", "/api/v1/stats"):
        r = getattr(client, method)(url, headers=H("view-s2"), **kw).json()
        assert case_id not in str(r)


def test_case_list_filters_on_several_states_and_me_tells_the_board_its_scope(client):
    ids = [client.post("/api/v1/alerts", json={"alerts": [alert(f"s{i}", device=f"d-{i}")]},
                       headers=H("edge")).json()["results"][0]["case_id"] for i in range(3)]
    client.post(f"/api/v1/cases/{ids[0]}/accept", headers=H("ops"))
    got = client.get("/api/v1/cases", params={"status": "open,accepted"}, headers=H("ops")).json()["cases"]
    assert {c["id"] for c in got} == set(ids)
    got = client.get("/api/v1/cases", params={"status": "accepted"}, headers=H("ops")).json()["cases"]
    assert [c["id"] for c in got] == [ids[0]]
    me = client.get("/api/v1/me", headers=H("ops-g3")).json()
    assert (me["role"], me["unit"], me["can_act"]) == ("operator", "grid-03", True)
    assert [u["id"] for u in me["units"]] == ["grid-03"]
    assert client.get("/api/v1/me", headers=H("edge")).status_code == 403
    page = client.get("/")
    assert page.status_code == 200 and "/board/board.js" in page.text
    assert client.get("/board/board.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/board/../app.py").status_code == 404


# ---- issue 16.2: inputs that made the hub answer 500 ---------------------------------------------------
def test_an_alert_with_a_nul_character_is_rejected_alone_not_its_batch(client):
    """On PostgreSQL the NUL made the whole batch answer 500, and the forwarder retried it forever."""
    bad = {**alert("a2", device="gas-04"), "message": "CH4\x00 high"}
    r = client.post("/api/v1/alerts", json={"alerts": [alert("a1"), bad, alert("a3", device="gas-05")]},
                    headers=H("edge"))
    assert r.status_code == 200
    got = r.json()["results"]
    assert [x["status"] for x in got] == ["created", "rejected", "created"]
    assert got[1]["alert_id"] == "a2" and got[1]["error"] == "message: contains a NUL character"
    labels = {**alert("a4", device="gas-06"), "labels": {"zone": "z\x001"}}
    got = client.post("/api/v1/alerts", json={"alerts": [labels]}, headers=H("edge")).json()["results"]
    assert got[0]["status"] == "rejected" and got[0]["error"].startswith("labels")
    assert len(client.get("/api/v1/cases", headers=H("ops")).json()["cases"]) == 2


def test_client_strings_and_numbers_out_of_range_get_4xx_not_500(client):
    r = client.post("/api/v1/cases", json={"grid": "grid-01", "category": "road", "title": "pot\x00hole"},
                    headers=H("ops"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "title"]
    assert client.get("/api/v1/cases", params={"grid": "grid-\x0001"}, headers=H("ops")).status_code == 422
    r = client.get("/api/v1/stats", params={"since": "0001-01-01T00:00:00Z"}, headers=H("ops"))
    assert r.status_code == 422 and "since" in r.text
    case_id = client.post("/api/v1/alerts", json={"alerts": [alert("a1")]},
                          headers=H("edge")).json()["results"][0]["case_id"]
    r = client.get(f"/api/v1/cases/{case_id}/evidence/99999999999999999999999", headers=H("ops"))
    assert r.status_code == 422
    assert client.get(f"/api/v1/cases/{case_id}/evidence/7", headers=H("ops")).status_code == 404
    r = client.post(f"/api/v1/cases/{case_id}/comment", json={"note": "a\x00b"}, headers=H("ops"))
    assert r.status_code == 422


def test_a_database_outage_answers_503_not_500(client, monkeypatch):
    """Failure injection: the store's connection fails as it does while PostgreSQL restarts."""
    from sqlalchemy.exc import OperationalError

    store = client.app.state.hub.store

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(store, "list_cases", down)
    r = client.get("/api/v1/cases", headers=H("ops"))
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    monkeypatch.setattr("hub.api.alerts.ingest", down)
    assert client.post("/api/v1/alerts", json={"alerts": [alert("a1")]}, headers=H("edge")).status_code == 503


# ---- issue 16.5: limits at the hub's door ----------------------------------------------------------------
def test_the_key_is_checked_before_the_body_is_read_and_bodies_are_capped(client):
    junk = b"{" * 100_000  # not even JSON: with a wrong key it must not be parsed at all
    r = client.post("/api/v1/alerts", content=junk, headers={**H("nobody"), "Content-Type": "application/json"})
    assert r.status_code == 401
    big = b" " * (16 * 1024 * 1024 + 1)
    r = client.post("/api/v1/alerts", content=big, headers={**H("edge"), "Content-Type": "application/json"})
    assert r.status_code == 413 and "over" in r.json()["detail"]


def test_a_client_presenting_wrong_keys_is_turned_away(client):
    for _ in range(20):
        assert client.get("/api/v1/cases", headers=H("guess")).status_code == 401
    r = client.get("/api/v1/cases", headers=H("guess"))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert client.get("/api/v1/cases", headers=H("ops")).status_code == 429  # the whole client waits
    from prometheus_client import generate_latest  # (the client itself is turned away now)

    assert b'gridwatch_hub_auth_failures_total 20.0' in generate_latest(client.app.state.hub.metrics.registry)


def test_failure_limiter_window_on_an_injected_clock():
    from hub.api.guard import FailureLimiter

    now = {"t": 0.0}
    lim = FailureLimiter(allowed=3, window=60.0, clock=lambda: now["t"])
    for t in (0.0, 10.0, 20.0):
        now["t"] = t
        assert lim.blocked_for("a") == 0.0
        lim.failed("a")
    assert lim.blocked_for("a") == 40.0 and lim.blocked_for("b") == 0.0
    now["t"] = 60.0  # the first failure left the window
    assert lim.blocked_for("a") == 0.0


def test_an_operator_transfers_only_within_its_subtree(client):
    case_id = client.post("/api/v1/alerts", json={"alerts": [alert("a1", grid="grid-03")]},
                          headers=H("edge")).json()["results"][0]["case_id"]
    r = client.post(f"/api/v1/cases/{case_id}/transfer", json={"unit": "grid-01"}, headers=H("ops-g3"))
    assert r.status_code == 403 and "within its subtree" in r.json()["detail"]
    r = client.post(f"/api/v1/cases/{case_id}/transfer", json={"unit": "grid-01"}, headers=H("ops"))
    assert r.status_code == 200 and r.json()["owner"] == "grid-01"


def test_edge_keys_scoped_to_grids_and_unknown_grids_by_policy(db_url):
    """Issue 16.5: any edge key could open cases in any grid, even unknown ones."""
    keys = [ApiKey(name="edge-a", role="edge", grids=["grid-01"], hash=hash_key("key-edge-a")),
            ApiKey(name="edge-all", role="edge", hash=hash_key("key-edge-all")),
            ApiKey(name="ops", role="operator", unit="district-a", hash=hash_key("key-ops"))]
    cfg = HubConfig(database=db_url, keys=keys, unknown_grids="reject").resolved(Path("configs"))
    with TestClient(create_app(cfg, clock=lambda: T, run_scheduler=False)) as c:
        got = c.post("/api/v1/alerts", json={"alerts": [alert("a1"), alert("a7", grid="grid-07")]},
                     headers=H("edge-a")).json()["results"]
        assert [r["status"] for r in got] == ["created", "rejected"]
        assert got[1]["error"] == "grid_id: 'grid-07' is not one of the grids of edge key 'edge-a'"
        got = c.post("/api/v1/alerts", json={"alerts": [alert("a9", grid="grid-99")]},
                     headers=H("edge-all")).json()["results"]
        assert got[0]["status"] == "rejected" and "not in the org tree" in got[0]["error"]
        assert [x["grid"] for x in c.get("/api/v1/cases", headers=H("ops")).json()["cases"]] == ["grid-01"]


def test_intake_limiter_on_an_injected_clock():
    from hub.api.guard import IntakeLimiter

    now = {"t": 0.0}
    lim = IntakeLimiter(rate=100.0, burst=200.0, clock=lambda: now["t"])
    assert lim.take("edge-a", 150) == 0.0 and lim.take("edge-b", 200) == 0.0  # each key its own bucket
    assert lim.take("edge-a", 100) == 0.5  # 50 left: 50 more come in half a second
    now["t"] = 0.5
    assert lim.take("edge-a", 100) == 0.0 and lim.take("edge-a", 1) > 0


def test_an_edge_key_over_its_alert_rate_gets_429_and_nothing_is_taken(db_url):
    from hub.config import HubLimits

    keys = [ApiKey(name="edge", role="edge", hash=hash_key("key-edge")),
            ApiKey(name="ops", role="operator", unit="district-a", hash=hash_key("key-ops"))]
    cfg = HubConfig(database=db_url, keys=keys, limits=HubLimits(intake_rate=1.0, intake_burst=3.0))
    with TestClient(create_app(cfg.resolved(Path("configs")), clock=lambda: T, run_scheduler=False)) as c:
        first = [alert(f"a{i}", device=f"gas-{i}") for i in range(3)]
        assert c.post("/api/v1/alerts", json={"alerts": first}, headers=H("edge")).status_code == 200
        r = c.post("/api/v1/alerts", json={"alerts": [alert("a9", device="gas-9")]}, headers=H("edge"))
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert len(c.get("/api/v1/cases", headers=H("ops")).json()["cases"]) == 3


def test_a_batch_larger_than_the_burst_passes_once_the_bucket_is_full():
    from hub.api.guard import IntakeLimiter

    now = {"t": 0.0}
    lim = IntakeLimiter(rate=10.0, burst=20.0, clock=lambda: now["t"])
    assert lim.take("edge", 50) == 0.0  # a full bucket lets it through, leaving a debt of 30
    assert lim.take("edge", 1) == 3.1
    now["t"] = 5.0
    assert lim.take("edge", 20) == 0.0
