"""视频复核 through the API (issue 41; the gateways' side is tests/test_gb28181_look.py): a sensor's registry entry
names the camera and preset that cover it; its alert opens a case that asks that camera to look; the gateway
reads the look, answers with the picture (a photo on the case) or why not; an operator asks one from the case
page; a look nobody answered in two minutes is no longer offered; the links are checked and kept."""

from __future__ import annotations

from tests.hubkit import api_client
from tests.test_board_views import JPEG
from tests.test_case_control import KEYS, H, T, alert, at, case, send


def put(c, did: str, key: str = "ops", **kw) -> object:
    return c.put(f"/api/v1/devices/{did}", json={"id": did, "grid": "grid-01", **kw}, headers=H(key))


def test_a_linked_sensor_asks_its_camera_to_look_and_the_gateway_answers_with_a_picture(db_url):
    with api_client(db_url, KEYS, T) as c:
        assert put(c, "cam-1", kind="camera", gateway="plat-1").status_code == 200
        assert put(c, "gas-03", kind="sensor", camera="cam-1", preset=3).status_code == 200
        # links that cannot work are refused with the reason
        for bad, why in (({"camera": "cam-9"}, "not in the registry"), ({"camera": "gas-03"}, "not a camera"),
                         ({"preset": 3}, "needs the camera"), ({"camera": "gas-04"}, "its own camera"),
                         ({"camera": "cam-1", "preset": 256}, "less than or equal to 255")):
            r = put(c, "gas-04", kind="sensor", **bad)
            assert r.status_code == 422 and why in r.text, (bad, r.text)
        listed = {d["id"]: d for d in c.get("/api/v1/devices", headers=H("ops")).json()["devices"]}
        assert (listed["gas-03"]["camera"], listed["gas-03"]["preset"]) == ("cam-1", 3)

        case_id = send(c, alert("a1"))[0]["case_id"]
        asked = [e for e in case(c, case_id)["timeline"] if e["action"] == "look_asked"]
        assert [(e["actor"], e["detail"]) for e in asked] == [
            ("edge", {"camera": "cam-1", "preset": 3, "sensor": "gas-03"})]
        send(c, alert("a2"))  # merged into the same case: no second look
        looks = c.get("/api/v1/looks", headers=H("ops")).json()["looks"]
        assert [(lk["case_id"], lk["camera"], lk["preset"], lk["sensor"], lk["asked_by"]) for lk in looks] == [
            (case_id, "cam-1", 3, "gas-03", "linkage")]
        look = looks[0]["id"]
        assert c.get("/api/v1/looks", headers=H("ops-g3")).json()["looks"] == []  # grid-03 does not see cam-1
        for key, code in (("view-g2", 403), ("ops-g3", 404)):  # a viewer looks at nothing; grid-03 sees no case
            assert c.post(f"/api/v1/cases/{case_id}/look", json={"camera": "cam-1"}, headers=H(key)).status_code == code
        # the gateway's answer: the picture on the case, with what it shows; once
        for bad, code in ((b"GIF89a....", 415), (JPEG, 404)):
            r = c.post(f"/api/v1/looks/{look if code != 404 else 999}/snapshot", content=bad,
                       headers={**H("ops"), "Content-Type": "image/jpeg"})
            assert r.status_code == code, r.text
        r = c.post(f"/api/v1/looks/{look}/snapshot", content=JPEG, headers={**H("ops"), "Content-Type": "image/jpeg"})
        assert r.status_code == 200 and r.json()["result"] == "snapshot", r.text
        got = case(c, case_id)
        assert [p["note"] for p in got["photos"]] == ["视频复核 · cam-1 · 预置位 3"]
        assert c.get(got["photos"][0]["url"], headers=H("ops")).content == JPEG
        done = [e["detail"] for e in got["timeline"] if e["action"] == "look_done"]
        assert done == [{"look": look, "camera": "cam-1", "preset": 3, "result": "snapshot"}]
        r = c.post(f"/api/v1/looks/{look}/failed", json={"reason": "late"}, headers=H("ops"))
        assert r.status_code == 409 and "answered already" in r.text
        assert c.get("/api/v1/looks", headers=H("ops")).json()["looks"] == []


def test_an_operator_asks_a_look_from_the_case_page_and_a_look_nobody_answers_lapses(db_url):
    with api_client(db_url, KEYS, T) as c:
        assert put(c, "cam-1", kind="camera").status_code == 200
        assert put(c, "gas-03", kind="sensor").status_code == 200
        case_id = send(c, alert("a1"))[0]["case_id"]
        assert c.get("/api/v1/looks", headers=H("ops")).json()["looks"] == []  # no link: nothing asked
        r = c.post(f"/api/v1/cases/{case_id}/look", json={}, headers=H("ops"))
        assert r.status_code == 422 and "names no camera" in r.text
        assert "look" not in case(c, case_id)["controls"]  # the case page offers no 视频复核 button
        for key, code in (("view-g2", 403), ("ops-g3", 404)):  # a viewer looks at nothing; grid-03 sees no case
            assert c.post(f"/api/v1/cases/{case_id}/look", json={"camera": "cam-1"}, headers=H(key)).status_code == code
        # the link written later (a sheet): the case page's button uses it; a preset named there wins
        sheet = "id,kind,grid,camera,preset\ngas-03,sensor,grid-01,cam-1,4\n"
        r = c.post("/api/v1/devices/import", content=sheet.encode(), headers={**H("ops"), "Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        assert "look" in case(c, case_id)["controls"]  # now it does
        r = c.post(f"/api/v1/cases/{case_id}/look", json={}, headers=H("ops"))
        assert r.status_code == 201 and (r.json()["camera"], r.json()["preset"], r.json()["asked_by"]) == (
            "cam-1", 4, "ops"), r.text
        first = r.json()["id"]
        r = c.post(f"/api/v1/cases/{case_id}/look", json={"preset": 9}, headers=H("ops"))
        assert r.status_code == 201 and r.json()["preset"] == 9
        r = c.post(f"/api/v1/looks/{first}/failed", json={"reason": "平台离线"}, headers=H("ops"))
        assert r.status_code == 200 and r.json()["detail"] == "平台离线"
        reasons = [e["detail"].get("reason") for e in case(c, case_id)["timeline"] if e["action"] == "look_done"]
        assert reasons == ["平台离线"]
        # a sheet written again without the columns keeps the link (a gateway's catalog writes its channels so)
        sheet = "id,kind,grid,name\ngas-03,sensor,grid-01,燃气表\n"
        assert c.post("/api/v1/devices/import", content=sheet.encode(),
                      headers={**H("ops"), "Content-Type": "text/csv"}).status_code == 200
        listed = {d["id"]: d for d in c.get("/api/v1/devices", headers=H("ops")).json()["devices"]}
        assert (listed["gas-03"]["camera"], listed["gas-03"]["preset"], listed["gas-03"]["name"]) == (
            "cam-1", 4, "燃气表")
        # two minutes on, the look still waiting is no longer offered: its picture would show another scene
        assert [lk["preset"] for lk in c.get("/api/v1/looks", headers=H("ops")).json()["looks"]] == [9]
        at(c, 2.5)
        assert c.get("/api/v1/looks", headers=H("ops")).json()["looks"] == []
