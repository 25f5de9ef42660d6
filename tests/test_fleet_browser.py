"""The fleet in the board, in Debian's Chromium against a real hub (and, for rules, two real agents):

- the map draws the grids, the registry's devices at their coordinates and an open case's marker on its
  device; clicking the marker opens the case;
- a rule set edited in the board: a broken draft shows the checker's lines and cannot be saved; the good
  one is saved, deployed to one grid first (only the agent serving it reports the new version), then to
  all, then rolled back to the earlier version, each step seen in the board's agent table.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest

from tests.hubkit import OPS
from tests.test_fleet_e2e import (
    DEVICES,
    RULES,
    register_devices,
    running,
    start_fleet,
    start_hub,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # make browser-test: keeps make test inside its ten minutes
OUT = Path(__file__).resolve().parent.parent / "test-output"


def merc(lon: float, lat: float) -> tuple[float, float]:
    """Web Mercator on the unit square (what the board draws in)."""
    return (lon + 180) / 360, 0.5 - math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) / (2 * math.pi)


def open_board(browser, url: str, tab: str):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) else None)
    page.goto(url + "/")
    page.fill("#key", OPS)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#board:not([hidden])")
    page.click(f"#tabs button[data-tab='{tab}']")
    page.wait_for_selector(f"#{tab}:not([hidden])")
    return page, outside


def test_map_shows_devices_and_case_markers_at_their_coordinates(tmp_path, browser):
    hub = start_hub(tmp_path)
    try:
        register_devices(hub)
        r = hub.post([{"alert_id": "m1", "state": "firing", "rule_id": "gas-high", "device_id": "gas-01",
                       "grid_id": "grid-01", "category": "gas_leak", "severity": "critical",
                       "observed_at": "2026-11-25T01:00:00Z", "message": "CH4 6200 ppm"}])
        case_id = r[0]["case_id"]
        page, outside = open_board(browser, hub.url, "map")
        page.wait_for_selector("#map-svg .case-pin")
        dots = page.eval_on_selector_all("#map-svg .dev-dot", """els => Object.fromEntries(els.map(e =>
            [e.dataset.device, [+e.getAttribute('cx'), +e.getAttribute('cy'), [...e.classList].join(' ')]]))""")
        assert set(dots) == {"gas-01", "gas-02", "gas-03", "gas-07"}
        # each dot where its coordinates put it: one scale and origin (Web Mercator) fits all four to 0.5 px
        where = {did: merc(lon, lat) for did, _, lat, lon, _ in DEVICES}
        s = (dots["gas-02"][0] - dots["gas-01"][0]) / (where["gas-02"][0] - where["gas-01"][0])
        assert s > 0
        for did, (mx, my) in where.items():
            assert abs(dots["gas-01"][0] + s * (mx - where["gas-01"][0]) - dots[did][0]) < 0.5, did
            assert abs(dots["gas-01"][1] + s * (my - where["gas-01"][1]) - dots[did][1]) < 0.5, did
        assert dots["gas-03"][1] > dots["gas-01"][1]  # south is down
        assert "alarm" in dots["gas-01"][2] and "ok" in dots["gas-03"][2]
        pin = page.get_attribute(f"#map-svg .case-pin[data-case='{case_id}']", "transform")
        x, y = (float(v) for v in pin.removeprefix("translate(").removesuffix(")").split(","))
        assert abs(x - dots["gas-01"][0]) < 0.2 and abs(y - dots["gas-01"][1]) < 0.2  # the case sits on its device
        assert "green" in page.get_attribute(f"#map-svg .case-pin[data-case='{case_id}']", "class")  # just opened
        assert page.locator("#map-svg polygon.grid-area").count() == 4
        OUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUT / "board-map.png"))
        page.dispatch_event(f"#map-svg .case-pin[data-case='{case_id}']", "click")
        page.wait_for_selector("#detail:not([hidden])")
        page.wait_for_selector(f"#detail[data-case='{case_id}']:not([hidden]) #detail-body h2")
        assert outside == [], outside  # no tiles fetched from anywhere by default
        page.close()
    finally:
        hub.stop()


def test_rule_edited_in_the_board_is_deployed_staged_and_rolled_back(tmp_path, browser, broker):
    hub = start_hub(tmp_path)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        start_fleet(tmp_path, broker, hub, procs)
        page, _ = open_board(browser, hub.url, "rules")
        page.wait_for_selector("#r-versions tr[data-version='1']")
        page.wait_for_function("() => document.querySelector('#r-editor').value.includes('gas-high')")
        # a broken draft: the checker's line shows as one types, and it cannot be saved
        page.fill("#r-editor", RULES.replace("THRESHOLD", "lots"))
        page.wait_for_selector("#r-problems li")
        problem = page.inner_text("#r-problems li")
        assert "rules[0].when.above" in problem and "(line 4)" in problem, problem
        assert page.is_disabled("#r-save")
        # the good edit: saved as v2
        page.fill("#r-editor", RULES.replace("THRESHOLD", "4000"))
        page.wait_for_function("() => document.querySelector('#r-status').textContent.includes('2')")
        page.wait_for_selector("#r-save:not([disabled])")
        page.fill("#r-note", "阈值调低至4000")
        page.click("#r-save")
        page.wait_for_selector("#r-versions tr[data-version='2']")
        assert hub.get("/api/v1/rules")["versions"][0]["note"] == "阈值调低至4000"
        # staged: grid-01 first
        page.select_option("#r-versions tr[data-version='2'] select.r-grids", ["grid-01"])
        page.click("#r-versions tr[data-version='2'] button.r-deploy-grids")
        assert running(hub, {"edge-a": 2, "edge-b": 1}, 30)  # agents poll; a loaded CI machine is slower
        page.click("#tabs button[data-tab='agents']")
        page.wait_for_selector("#agents-table tr[data-agent='edge-a'][data-version='2']")
        page.wait_for_selector("#agents-table tr[data-agent='edge-b'][data-version='1']")
        # then all
        page.click("#tabs button[data-tab='rules']")
        page.click("#r-versions tr[data-version='2'] button.r-deploy-all")
        assert running(hub, {"edge-a": 2, "edge-b": 2}, 30)  # agents poll; a loaded CI machine is slower
        # rollback: v1 to all
        page.click("#r-versions tr[data-version='1'] button.r-deploy-all")
        assert running(hub, {"edge-a": 1, "edge-b": 1}, 30)  # agents poll; a loaded CI machine is slower
        page.click("#tabs button[data-tab='rules']")
        page.wait_for_selector("#r-agents tr[data-agent='edge-b'][data-version='1']")
        page.screenshot(path=str(OUT / "board-rules.png"))
        page.close()
    finally:
        for p in procs:
            from simulators.services import stop_pid
            stop_pid(p)
        hub.stop()


def test_a_camera_is_disarmed_from_the_device_list_after_a_warning(tmp_path, browser):
    """布防/撤防 from the board (issue 41): a camera's row says 布防 with a 撤防 button; the button asks first (its
    alarms will open no case), then the hub has the camera disarmed and the row says 撤防, waiting for the
    device to confirm through its gateway (tests/test_gb28181_guard.py takes it from there)."""
    hub = start_hub(tmp_path)
    try:
        r = hub.call("PUT", "/api/v1/devices/cam-01", json={"id": "cam-01", "kind": "camera", "grid": "grid-01",
                                                             "name": "幸福路口球机", "gateway": "plat-1"})
        assert r.status_code == 200, r.text
        page, _ = open_board(browser, hub.url, "devices")
        cell = "#devices-table tr[data-device='cam-01'] td:last-child"
        page.wait_for_selector(f"{cell} .guard.armed")
        assert page.inner_text(f"{cell} .guard-toggle") == "撤防"
        asked: list[str] = []

        def answer(dialog) -> None:  # noqa: ANN001
            asked.append(dialog.message)
            dialog.accept()
        page.on("dialog", answer)
        page.click(f"{cell} .guard-toggle")
        page.wait_for_selector(f"{cell} .guard.disarmed")
        assert asked and "不再立案" in asked[0] and "幸福路口球机" in asked[0], asked
        assert "撤防" in page.inner_text(f"{cell} .guard") and "待设备确认" in page.inner_text(f"{cell} .guard")
        assert page.inner_text(f"{cell} .guard-toggle") == "布防"
        assert [(g["id"], g["guard"]) for g in hub.get("/api/v1/devices/guards")["guards"]] == [("cam-01", "disarmed")]
        OUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUT / "board-devices-guard.png"))
        page.close()
    finally:
        hub.stop()


def test_a_sensor_is_linked_to_its_camera_in_the_form_and_its_case_page_shows_and_asks_the_video_check(
        tmp_path, browser):  # and plays the camera's recorded clip
    """视频复核 in the board (issue 41): the device form links a gas sensor to the dome and preset that cover it
    (saving the dome from the form again keeps what the form does not show: its gateway); the sensor's case page
    says the camera was called to the preset, its 视频复核 button asks again (the operator's name on the
    timeline), and the picture the gateway sends is shown on the page with what it is. Read back by OCR."""
    from tests.test_board_browser import alert
    from tests.test_board_views import ocr

    hub = start_hub(tmp_path)
    try:
        r = hub.call("PUT", "/api/v1/devices/cam-01", json={"id": "cam-01", "kind": "camera", "grid": "grid-01",
                                                             "name": "幸福路口球机", "gateway": "plat-1"})
        assert r.status_code == 200, r.text
        page, _ = open_board(browser, hub.url, "devices")
        page.wait_for_selector("#devices-table tr[data-device='cam-01']")
        page.click("#devices-table tr[data-device='cam-01']")  # the dome into the form, saved again unchanged
        assert page.input_value("#d-name") == "幸福路口球机"
        page.click("#d-form button[type=submit]")
        page.wait_for_function("() => document.querySelector('#d-msg').textContent.includes('cam-01')")
        for sel, value in (("#d-id", "gas-0301"), ("#d-name", "3号燃气阀井"), ("#d-camera", "cam-01"),
                           ("#d-preset", "3")):
            page.fill(sel, value)
        page.select_option("#d-kind", "sensor")
        page.select_option("#d-grid", "grid-01")
        page.click("#d-form button[type=submit]")
        page.wait_for_function("() => document.querySelector('#d-msg').textContent.includes('gas-0301')")
        listed = {d["id"]: d for d in hub.get("/api/v1/devices")["devices"]}
        assert (listed["gas-0301"]["camera"], listed["gas-0301"]["preset"]) == ("cam-01", 3)
        assert listed["cam-01"]["gateway"] == "plat-1"  # not lost by the form, which does not show it

        case_id = hub.post([alert(1, "grid-01", device="gas-0301")])[0]["case_id"]
        page.click("#tabs button[data-tab='board']")
        row = f"tr[data-case='{case_id}']"
        page.wait_for_selector(row)
        page.click(row)
        asked = "#detail ol.timeline li[data-action='look_asked']"
        page.wait_for_selector(asked)
        assert "视频复核：调用摄像机 cam-01 预置位 3（gas-0301 联动）" in page.inner_text(asked)
        page.click("#actions button[data-action='look']")
        page.wait_for_function(f"() => document.querySelectorAll(\"{asked}\").length === 2")
        mine = page.query_selector_all(asked)[1].inner_text()
        assert "ops-district" in mine and "预置位 3" in mine and "联动" not in mine, mine
        looks = hub.get("/api/v1/looks")["looks"]
        assert [(lk["asked_by"], lk["preset"]) for lk in looks] == [("linkage", 3), ("ops-district", 3)]
        import cv2

        from simulators import footage
        street = cv2.imencode(".jpg", cv2.resize(next(footage.frames(footage.clip(), 1)), (480, 360)))[1].tobytes()
        r = hub.call("POST", f"/api/v1/looks/{looks[0]['id']}/snapshot", content=street,
                     headers={"Content-Type": "image/jpeg"})
        assert r.status_code == 200, r.text
        page.wait_for_selector("#detail ol.timeline li[data-action='look_done']")
        assert "复核画面已附：cam-01 预置位 3" in page.inner_text("#detail ol.timeline li[data-action='look_done']")
        page.wait_for_function("() => document.querySelector('#detail .evidence img').naturalWidth === 480")
        caption = page.inner_text("#detail .evidence figcaption")
        assert "视频复核 · cam-01 · 预置位 3" in caption, caption
        shot = OUT / "board-case-look.png"
        page.screenshot(path=str(shot))
        seen = ocr(shot, "chi_sim")
        assert "视频复核" in seen and "调用摄像机" in seen, seen  # the picture above, the timeline below it
        # the camera's recording around the alarm (what the GB/T 28181 gateway sends): played on the page
        from tests.footagekit import h264
        mp4 = h264("vtest-768-gop10-15s", seconds=15, gop=10).read_bytes()
        r = hub.call("POST", f"/api/v1/cases/{case_id}/clips", content=mp4, headers={"Content-Type": "video/mp4"},
                     params={"note": "报警录像 (GB/T 28181): 区域入侵"})
        assert r.status_code == 201, r.text
        page.wait_for_selector("#detail .evidence figure.clip video")
        page.wait_for_function("() => { const v = document.querySelector('#detail .evidence video');"
                               " return v.readyState >= 1 && Math.abs(v.duration - 15) < 1; }", timeout=10_000)
        page.evaluate("() => document.querySelector('#detail .evidence video').play()")
        page.wait_for_function("() => document.querySelector('#detail .evidence video').currentTime > 1",
                               timeout=10_000)  # it plays: H.264 decoded in the page
        assert "报警录像" in page.inner_text("#detail .evidence figure.clip figcaption")
        page.evaluate("() => { const v = document.querySelector('#detail .evidence video'); v.pause(); }")
        page.locator("#detail .evidence figure.clip").scroll_into_view_if_needed()
        page.screenshot(path=str(OUT / "board-case-clip.png"))
        page.close()
    finally:
        hub.stop()
