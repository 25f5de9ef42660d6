"""布防/撤防 through the API (issue 41; the gateway's side is tests/test_gb28181_guard.py): who may arm and
disarm which device, what the gateway reads, a confirmation for a state the hub no longer asks refused, and
the guard kept when the device is written again (the gateway imports its catalog at each registration)."""

from __future__ import annotations

from datetime import timedelta

from tests.hubkit import api_client
from tests.test_case_control import H, T, at

KEYS = {"ops": ("operator", "district-a"), "s2": ("operator", "street-2"), "v1": ("viewer", "grid-01"),
        "v3": ("viewer", "grid-03")}


def test_guard_is_scoped_read_by_the_gateway_confirmed_once_and_survives_a_catalog_import(db_url):
    with api_client(db_url, KEYS, T) as c:
        for did, grid in (("cam-1", "grid-01"), ("cam-3", "grid-03")):
            r = c.put(f"/api/v1/devices/{did}", json={"id": did, "kind": "camera", "grid": grid,
                                                      "gateway": "plat-1"}, headers=H("ops"))
            assert r.status_code == 200, r.text
        assert c.get("/api/v1/devices/guards", headers=H("ops")).json() == {"guards": []}
        # street-2 does not write grid-01 (community-11 is street-1's); a viewer writes nothing
        assert c.post("/api/v1/devices/cam-1/guard", json={"state": "disarmed"}, headers=H("s2")).status_code == 403
        assert c.post("/api/v1/devices/cam-1/guard", json={"state": "disarmed"}, headers=H("v1")).status_code == 403
        assert c.post("/api/v1/devices/cam-1/guard", json={"state": "off"}, headers=H("ops")).status_code == 422
        for did in ("cam-1", "cam-3"):
            r = c.post(f"/api/v1/devices/{did}/guard", json={"state": "disarmed"}, headers=H("ops"))
            assert r.status_code == 200 and r.json()["guard"] == "disarmed", r.text
        seen = {k: [g["id"] for g in c.get("/api/v1/devices/guards", headers=H(k)).json()["guards"]]
                for k in ("ops", "v1", "v3")}
        assert seen == {"ops": ["cam-1", "cam-3"], "v1": ["cam-1"], "v3": ["cam-3"]}

        # the device confirms: shown; a confirmation of the state no longer asked is refused
        assert c.post("/api/v1/devices/cam-1/guard/reported", json={"state": "armed"},
                      headers=H("ops")).status_code == 409
        r = c.post("/api/v1/devices/cam-1/guard/reported", json={"state": "disarmed"}, headers=H("ops"))
        assert r.status_code == 200 and r.json()["guard_reported"] == "disarmed" and r.json()["guard_at"], r.text

        # the gateway writes the channel again (its catalog at the next registration): the guard stays
        sheet = "id,kind,grid,name,gateway\ncam-1,camera,grid-01,南门,plat-1\n"
        r = c.post("/api/v1/devices/import", content=sheet.encode(), headers={**H("ops"), "Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        listed = {d["id"]: d for d in c.get("/api/v1/devices", headers=H("ops")).json()["devices"]}
        assert (listed["cam-1"]["guard"], listed["cam-1"]["guard_reported"], listed["cam-1"]["name"]) == (
            "disarmed", "disarmed", "南门")

        # asked again for the other state: what the device confirmed before no longer stands
        r = c.post("/api/v1/devices/cam-1/guard", json={"state": "armed"}, headers=H("ops"))
        assert (r.json()["guard"], r.json()["guard_reported"]) == ("armed", None)
        assert c.post("/api/v1/devices/nope/guard", json={"state": "armed"}, headers=H("ops")).status_code == 404


def test_a_maintenance_window_disarms_a_camera_for_its_hours_and_nothing_is_asked_after_it(db_url):
    """The schedule: a window over a camera (or its grid) in force disarms it, `why: maintenance`, whatever an
    operator asked; after the window the hub asks what the operator asked, or nothing (the gateway then arms
    again what it disarmed). A sensor under the same window is not a thing to arm."""
    with api_client(db_url, KEYS, T) as c:
        for did, kind, grid in (("cam-7", "camera", "grid-07"), ("cam-1", "camera", "grid-01"),
                                ("gas-7", "sensor", "grid-07")):
            assert c.put(f"/api/v1/devices/{did}", json={"id": did, "kind": kind, "grid": grid},
                         headers=H("ops")).status_code == 200
        assert c.post("/api/v1/devices/cam-1/guard", json={"state": "armed"}, headers=H("ops")).status_code == 200
        for scope, target in (("grid", "grid-07"), ("device", "cam-1")):
            r = c.post("/api/v1/maintenance", headers=H("ops"), json={
                "scope": scope, "target": target, "reason": "管线施工",
                "starts_at": (T + timedelta(minutes=10)).isoformat(),
                "ends_at": (T + timedelta(minutes=70)).isoformat()})
            assert r.status_code == 201, r.text

        def wishes() -> dict:
            return {g["id"]: (g["wanted"], g["why"]) for g in c.get("/api/v1/devices/guards",
                                                                     headers=H("ops")).json()["guards"]}
        assert wishes() == {"cam-1": ("armed", "asked")}  # before the windows
        at(c, 20)
        assert wishes() == {"cam-1": ("disarmed", "maintenance"), "cam-7": ("disarmed", "maintenance")}
        listed = {d["id"]: d["guard"] for d in c.get("/api/v1/devices", headers=H("ops")).json()["devices"]}
        assert listed == {"cam-1": "disarmed", "cam-7": "disarmed", "gas-7": None}
        assert c.post("/api/v1/devices/cam-7/guard/reported", json={"state": "disarmed"},
                      headers=H("ops")).status_code == 200
        at(c, 80)
        assert wishes() == {"cam-1": ("armed", "asked")}
        assert c.post("/api/v1/devices/cam-7/guard/reported", json={"state": "armed"},
                      headers=H("ops")).status_code == 409  # nothing asked of it now
