"""布防/撤防 through the API (issue 41; the gateway's side is tests/test_gb28181_guard.py): who may arm and
disarm which device, what the gateway reads, a confirmation for a state the hub no longer asks refused, and
the guard kept when the device is written again (the gateway imports its catalog at each registration)."""

from __future__ import annotations

from tests.hubkit import api_client
from tests.test_case_control import H, T

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
