"""The board in headless Chromium (Debian's, driven by Playwright) against a real `gridwatch hub serve`:
a posted alert appears without reload, its light turns yellow then red on time, it moves to the parent
unit when escalated, an operator accepts it from the page; the page reconnects after a hub restart; a grid
viewer sees only its grid, in the page and in the stream; with 2,000 open cases an SSE event reaches its
row within 500 ms."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.hubkit import OPS, VIEW01, Hub, person_sign_in, second_code

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # make browser-test: keeps make test inside its ten minutes
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test-output"
SLA = """
policies:
  - id: fast
    match: {categories: [gas_leak]}
    calendar: 24x7
    limits: {accept: 6s, resolve: 60s, feedback: 60s}
    yellow_at: 0.5
    remind_every: 60s
  - id: slow
    calendar: 24x7
    limits: {accept: 2h, resolve: 8h, feedback: 8h}
"""


def alert(n: int, grid: str, category: str = "gas_leak", device: str | None = None) -> dict:
    now = datetime.now(UTC).isoformat()
    return {"alert_id": f"a{n:06d}-{time.time_ns()}", "state": "firing", "rule_id": "gas-high", "edge_id": "e",
            "device_id": device or f"dev-{n}", "grid_id": grid, "kind": "sensor", "category": category,
            "severity": "critical", "started_at": now, "observed_at": now, "value": 6200.0,
            "message": "CH4 6200 ppm", "labels": {}, "evidence": {}}


def login(browser, hub: Hub, key: str):
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(hub.url) else None)
    page.goto(hub.url + "/")
    page.fill("#key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#board:not([hidden])")
    page.wait_for_selector("#live.on", timeout=10_000)
    return page, outside


def test_case_lights_escalation_and_accept_in_the_page(tmp_path, browser):
    hub = Hub(tmp_path, SLA).start()
    try:
        page, outside = login(browser, hub, OPS)
        assert page.inner_text("h1") == "网格指挥中心"  # zh-CN by default
        res = hub.post([alert(1, "grid-02", device="gas-21")])
        case_id = res[0]["case_id"]
        row = f"tr[data-case='{case_id}']"
        page.wait_for_selector(row, timeout=5_000)  # appeared without a reload
        opened = datetime.fromisoformat(hub.get(f"/api/v1/cases/{case_id}")["opened_at"]).timestamp()
        page.wait_for_selector(f"{row}[data-light='yellow']", timeout=10_000)
        assert page.inner_text(f"{row} .c-light") == "黄灯"  # the light has a text label, not colour alone
        page.wait_for_selector(f"{row}[data-owner='community-11']", timeout=15_000)  # escalated to the parent
        seen = [x for x in page.evaluate("window.gridwatch.journal") if x["case_id"] == case_id]
        changes = [(x["light"], x["owner"], x["at"] - opened) for x in seen]
        lights = [light for light, _, _ in changes]
        assert "yellow" in lights and "red" in lights[lights.index("yellow"):], changes
        yellow_at = next(t for light, _, t in changes if light == "yellow")
        red_at = next(t for light, _, t in changes if light == "red")
        escalated_at = next(t for _, owner, t in changes if owner == "community-11")
        assert 2.5 <= yellow_at <= 4.5 and 5.5 <= red_at <= 7.5, changes  # due at 3 s and 6 s
        assert escalated_at >= red_at, changes
        assert page.inner_text(f"{row} .c-esc") == "1"
        assert "community" in page.inner_text(f"{row} .c-owner") or "社区" in page.inner_text(f"{row} .c-owner")
        # the clock ticks in the page without asking the server
        before = page.inner_text(f"{row} .c-elapsed")
        page.wait_for_function("([sel, text]) => document.querySelector(sel).textContent !== text",
                               arg=[f"{row} .c-elapsed", before], timeout=3_000)
        # an operator accepts it from the case page
        page.click(row)
        page.wait_for_selector("#detail:not([hidden]) button[data-action='accept']")
        page.click("button[data-action='accept']")
        page.wait_for_selector(f"{row}[data-status='accepted']", timeout=5_000)
        assert hub.get(f"/api/v1/cases/{case_id}")["status"] == "accepted"
        # an action that is not allowed says why, in the page's language
        page.click("button[data-action='resolve']")  # no note
        page.wait_for_function("() => document.querySelector('#action-error').textContent.includes('办结需要填写说明')")
        OUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUT / "board.png"), full_page=True)
        page.click("#close-detail")
        page.click("#lang")
        assert page.inner_text("h1") == "Grid command center"
        # analysis view from /api/v1/stats
        page.click("#tabs button[data-tab='analysis']")
        page.wait_for_selector("#ch-category svg rect")
        page.screenshot(path=str(OUT / "board-analysis.png"))
        page.click("#tabs button[data-tab='board']")
        # the hub restarts: the page reconnects by itself and keeps up
        hub.stop()
        page.wait_for_selector("#live.reconnecting, #live.lost", timeout=10_000)
        hub.start()
        page.wait_for_selector("#live.on", timeout=15_000)
        res = hub.post([alert(2, "grid-03", device="gas-31")])
        page.wait_for_selector(f"tr[data-case='{res[0]['case_id']}']", timeout=5_000)
        assert outside == []  # every script, style and font came from the hub
        page.close()
    finally:
        hub.stop()


def test_a_closed_case_page_stays_closed_when_a_late_read_of_it_comes_back(tmp_path, browser):
    """The case page re-reads its case on each of its events. An operator who closes it (×) while such a read
    is still on the way keeps it closed: the late answer does not open it again over the board (CI caught the
    panel reopened over the logout button)."""
    hub = Hub(tmp_path, SLA).start()
    try:
        page, _ = login(browser, hub, OPS)
        case_id = hub.post([alert(1, "grid-02", category="intrusion", device="cam-21")])[0]["case_id"]
        row = f"tr[data-case='{case_id}']"
        page.click(row)
        page.wait_for_selector("#detail:not([hidden]) button[data-action='accept']")
        passed: list = []
        held: list = []

        def hold_the_second(route):  # the row's refresh passes, the case page's own read is held
            if route.request.method == "GET" and not passed:
                passed.append(route)
                route.continue_()
            else:
                held.append(route)

        page.route(f"**/api/v1/cases/{case_id}", hold_the_second)
        assert hub.call("POST", f"/api/v1/cases/{case_id}/accept", json={"note": "已签收"}).status_code == 200
        for _ in range(100):
            if held:
                break
            page.wait_for_timeout(50)
        assert held, "the case page did not re-read its case on its event"
        page.click("#close-detail")
        assert page.is_hidden("#detail")
        with page.expect_event("requestfinished", lambda r: r.url.endswith(case_id)):
            held[0].continue_()
        page.evaluate("() => new Promise((done) => setTimeout(done, 200))")  # the answer's JSON is read
        assert page.is_hidden("#detail")
        page.click("#logout")  # nothing lies over it
        page.wait_for_selector("#login:not([hidden])")
        page.close()
    finally:
        hub.stop()


def test_grid_viewer_sees_only_its_grid_in_the_page_and_the_stream(tmp_path, browser):
    hub = Hub(tmp_path, SLA).start()
    try:
        wrong = browser.new_page()
        wrong.goto(hub.url + "/")
        wrong.fill("#key", "not-a-key")
        wrong.click("#login-form button[type=submit]")
        wrong.wait_for_function("() => document.querySelector('#login-error').textContent === '密钥无效'")
        assert wrong.is_hidden("#board")
        wrong.close()
        page, _ = login(browser, hub, VIEW01)
        with httpx.stream("GET", f"{hub.url}/api/v1/stream", headers={"Authorization": f"Bearer {VIEW01}"},
                          timeout=httpx.Timeout(10, read=3)) as stream:
            mine = hub.post([alert(1, "grid-01", category="intrusion")])[0]["case_id"]
            theirs = hub.post([alert(2, "grid-02", category="intrusion")])[0]["case_id"]
            page.wait_for_selector(f"tr[data-case='{mine}']", timeout=5_000)
            events = []
            try:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        events.append(json.loads(line[5:]))
            except httpx.ReadTimeout:
                pass
        assert {e["case_id"] for e in events} == {mine}
        page.wait_for_timeout(1_000)
        assert page.query_selector(f"tr[data-case='{theirs}']") is None
        assert page.query_selector("#actions button") is None  # a viewer gets no action buttons
        page.click(f"tr[data-case='{mine}']")
        page.wait_for_selector("#detail:not([hidden])")
        assert page.query_selector("#actions button") is None
        units = [o.get_attribute("value") for o in page.query_selector_all("#f-unit option")]
        assert units == ["", "grid-01"]
        page.close()
    finally:
        hub.stop()


@pytest.mark.alone  # make browser-timing: its 2 s is the board's, not the CI lanes' (2.2 s once beside them)
def test_two_thousand_open_cases_stay_responsive(tmp_path, browser, capsys):
    hub = Hub(tmp_path, SLA).start()
    try:
        grids = ["grid-01", "grid-02", "grid-03", "grid-07"]
        ids = []
        for b in range(20):
            ids += [r["case_id"] for r in hub.post([alert(b * 100 + i, grids[i % 4], category="intrusion")
                                                    for i in range(100)])]
        page, _ = login(browser, hub, OPS)
        page.wait_for_function("() => document.querySelectorAll('#cases tbody tr').length === 2000", timeout=30_000)
        timings, walls = [], []
        # one unmeasured action first: the first POST pays for the hub's and the page's cold paths (2.04 s once
        # on a loaded CI run, against about 0.4-1 s for the ones after it)
        httpx.post(f"{hub.url}/api/v1/cases/{ids[1]}/comment", json={"note": "warm"},
                   headers={"Authorization": f"Bearer {OPS}"}).raise_for_status()
        page.wait_for_function("id => window.gridwatch.lastUpdate && window.gridwatch.lastUpdate.case_id === id",
                               arg=ids[1], timeout=5_000)
        for n, case_id in enumerate(ids[::400]):
            page.evaluate("window.gridwatch.lastUpdate = null")
            t0 = time.perf_counter()
            httpx.post(f"{hub.url}/api/v1/cases/{case_id}/{'accept' if n % 2 == 0 else 'comment'}",
                       json={"note": "on it"}, headers={"Authorization": f"Bearer {OPS}"}).raise_for_status()
            page.wait_for_function("id => window.gridwatch.lastUpdate && window.gridwatch.lastUpdate.case_id === id",
                                   arg=case_id, timeout=5_000)
            walls.append((time.perf_counter() - t0) * 1000)
            timings.append(page.evaluate("window.gridwatch.lastUpdate.ms"))
        page.wait_for_selector(f"tr[data-case='{ids[0]}'][data-status='accepted']")
        with capsys.disabled():
            print(f"\n2,000 open cases: SSE event -> row updated {max(timings):.1f} ms max "
                  f"(of {len(timings)}); action POST -> row updated {min(walls):.0f}-{max(walls):.0f} ms")
        assert max(timings) <= 500
        assert max(walls) <= 2000  # includes the stream's 0.25 s poll of the event log
        page.close()
    finally:
        hub.stop()


def add_people(hub: Hub, *people: tuple[str, str, str]) -> None:
    """Operator accounts (username, name, unit) made by the administrator through the API, password
    `S3cret-pw-2026`."""
    for user, name, unit in people:
        r = hub.call("POST", "/api/v1/users", key="hubkit-admin-key",
                     json={"username": user, "name": name, "unit": unit, "role": "operator",
                           "password": "S3cret-pw-2026"})
        assert r.status_code == 201, r.text


def person_login(browser, hub: Hub, username: str, password: str):
    """An operator signs in on the board with the password and the authenticator's code (operators have a
    second factor by default; enrolled through the API first, as `tests/test_board_security.py` shows the
    page's own enrolment)."""
    person_sign_in(lambda p, **kw: httpx.post(hub.url + p, timeout=30, **kw), username, password, where=hub.url)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(hub.url + "/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#otp:not([hidden])")
    assert "动态口令" in page.inner_text("#login-error")
    page.fill("#otp", second_code(hub.url, username))
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#board:not([hidden])")
    page.wait_for_selector("#live.on", timeout=10_000)
    return page


def test_people_sign_in_sign_for_report_with_a_photo_and_another_verifies(tmp_path, browser):
    """Three accounts made by the administrator through the API: 网格员 张伟 of grid-01 signs in with his name
    and password, signs for (accepts) the case, asks for an extension (延期) that 刘洋 of the district
    approves on his own page, attaches a photo and reports the result; he is not offered the close; 陈静 of
    the community signs in and closes it (verification). The timeline names them."""
    from tests.test_board_views import JPEG

    hub = Hub(tmp_path, SLA, keys=[{"name": "admin", "role": "admin", "key": "hubkit-admin-key"}]).start()
    try:
        add_people(hub, ("zhang.wei", "张伟", "grid-01"), ("chen.jing", "陈静", "community-11"),
                   ("liu.yang", "刘洋", "district-a"))
        wrong = browser.new_page()
        wrong.goto(hub.url + "/")
        wrong.fill("#username", "zhang.wei")
        wrong.fill("#password", "guess-guess")
        wrong.click("#login-form button[type=submit]")
        wrong.wait_for_function("() => document.querySelector('#login-error').textContent.includes('用户名或密码错误')")
        wrong.close()
        case_id = hub.post([alert(1, "grid-01", category="intrusion", device="cam-01")])[0]["case_id"]
        page = person_login(browser, hub, "zhang.wei", "S3cret-pw-2026")
        assert "张伟" in page.inner_text("#who")
        row = f"tr[data-case='{case_id}']"
        page.click(row)
        page.wait_for_selector("#detail:not([hidden]) button[data-action='accept']")
        page.click("button[data-action='accept']")
        page.wait_for_selector("#actions button[data-action='resolve']")
        # 延期: he asks for two more days; the district approves it on its own page
        until = (datetime.now() + timedelta(days=2)).replace(second=0, microsecond=0)
        page.fill("#action-note", "等待围栏配件到货")
        page.fill("#ext-until", until.strftime("%Y-%m-%dT%H:%M"))
        page.click("#actions button[data-action='extension']")
        page.wait_for_selector("#detail ol.timeline li[data-action='extension_requested']")
        assert page.query_selector("#actions button[data-action='extension']") is None  # one at a time
        assert page.query_selector("#actions button[data-action='approve_extension']") is None  # not his to decide
        district = person_login(browser, hub, "liu.yang", "S3cret-pw-2026")
        district.click(row)
        district.wait_for_selector("#ext-request")
        assert "等待围栏配件到货" in district.inner_text("#ext-request")
        district.fill("#action-note", "同意")
        district.click("#actions button[data-action='approve_extension']")
        district.wait_for_selector("#detail ol.timeline li[data-action='extension_approved']")
        district.close()
        extended = hub.get(f"/api/v1/cases/{case_id}")
        assert extended["extensions"] == 1
        # 督办 from above reaches the grid worker's row live, as a flag
        r = hub.call("POST", f"/api/v1/cases/{case_id}/supervise", key="hubkit-admin-key",
                     json={"order": "今日内回复进展", "until": (datetime.now(UTC) + timedelta(hours=4)).isoformat()})
        assert r.status_code == 201, r.text
        page.wait_for_selector(f"{row} .flag.sv", timeout=5_000)
        assert page.inner_text(f"{row} .flag.sv") == "督"
        assert datetime.fromisoformat(extended["clock"]["deadline"]) == until.astimezone()
        page.click("#close-detail")
        page.click(row)
        page.wait_for_selector("#actions button[data-action='resolve']")
        page.set_input_files("#photo-input", files=[{"name": "site.jpg", "mimeType": "image/jpeg", "buffer": JPEG}])
        page.wait_for_selector("#detail ol.timeline li[data-action='photo']")
        page.fill("#action-note", "已到场处置，围栏修复")
        page.click("#actions button[data-action='resolve']")
        page.wait_for_selector(f"{row}[data-status='resolved']", timeout=5_000)
        page.wait_for_selector("#detail ol.timeline li[data-action='resolve']")
        assert "张伟" in page.inner_text("#detail ol.timeline li[data-action='resolve']")
        assert page.query_selector("#actions button[data-action='close']") is None  # not his own result
        page.click("#close-detail")
        page.click("#logout")
        page.wait_for_selector("#login:not([hidden])")
        other = person_login(browser, hub, "chen.jing", "S3cret-pw-2026")
        other.click(row)
        other.wait_for_selector("#actions button[data-action='close']")
        other.fill("#action-note", "核查通过")
        other.click("#actions button[data-action='close']")
        other.wait_for_selector("#detail ol.timeline li[data-action='close']", timeout=5_000)
        assert "陈静" in other.inner_text("#detail ol.timeline li[data-action='close']")
        detail = hub.get(f"/api/v1/cases/{case_id}")
        assert detail["status"] == "closed"
        by = {e["action"]: (e["actor"], e["detail"].get("by")) for e in detail["timeline"]}
        assert by["accept"] == ("zhang.wei", "张伟") and by["resolve"] == ("zhang.wei", "张伟")
        assert by["close"] == ("chen.jing", "陈静") and by["photo"] == ("zhang.wei", "张伟")
        assert len(detail["photos"]) == 1
        other.screenshot(path=str(OUT / "board-people.png"))
        # 考核: the ranking shows grid-01 with its one case, and the figure opens the case behind it
        other.click("#close-detail")
        other.click("#tabs button[data-tab='analysis']")
        other.wait_for_selector("#ranking tbody tr[data-unit='grid-01']")
        cells = other.locator("#ranking tbody tr[data-unit='grid-01'] td").all_inner_texts()
        assert cells[0] == "1" and cells[2] == "1" and cells[3] == "100.0%" and cells[7] == "1", cells  # 1 extended
        other.click("#ranking tbody tr[data-unit='grid-01'] td[data-measure='dispatched']")
        other.wait_for_selector(f"#behind a[data-case='{case_id}']")
        other.click(f"#behind a[data-case='{case_id}']")
        other.wait_for_selector(f"#detail[data-case='{case_id}']:not([hidden])")
        other.screenshot(path=str(OUT / "board-ranking.png"))
        other.close()
        page.close()
    finally:
        hub.stop()


STAGES_SLA = SLA.replace("policies:\n", """policies:
  - id: citizen
    match: {manual: true}
    calendar: 24x7
    callback: true
    limits: {dispatch: 2h, accept: 2h, resolve: 8h, feedback: 8h, callback: 8h}
""", 1)


def doubled(png: Path) -> Path:
    """The screenshot at twice its size (a page drawn at scale 1 has glyphs too small for tesseract)."""
    from PIL import Image

    img = Image.open(png)
    out = png.with_name(png.stem + "-2x.png")
    img.resize((img.width * 2, img.height * 2), Image.Resampling.LANCZOS).save(out)
    return out


def settled_box(page, selector: str) -> dict:
    """The box of an element the page may be re-rendering: the detail is rebuilt on every event about the
    case, so the element the locator found can be detached before its box is read (CI saw None)."""
    for _ in range(50):
        box = page.locator(selector).bounding_box()
        if box:
            return box
        page.wait_for_timeout(100)
    raise AssertionError(f"{selector} never settled on the page")


def test_a_street_dispatches_from_its_queue_and_the_stage_view_follows_to_the_callback(tmp_path, browser):
    """A citizen report that routing leaves at 东街道's command center: 李娜 of the street finds it in her 待派单
    queue and dispatches it to the 城管 squad on the board; 王强 of the squad signs for it and reports the
    result; 张伟 of the grid verifies it on the spot; 李娜 calls back (满意) and the case closes. The stage
    view (流程看板) is read back from the pixels at the start and at the end."""
    from tests.test_board_views import ocr

    hub = Hub(tmp_path, STAGES_SLA, keys=[{"name": "admin", "role": "admin", "key": "hubkit-admin-key"}],
              routing=str(ROOT / "configs/routing.yaml")).start()
    try:
        add_people(hub, ("li.na", "李娜", "street-1"), ("wang.qiang", "王强", "dept-cg-1"),
                   ("zhang.wei", "张伟", "grid-01"))
        r = hub.call("POST", "/api/v1/cases", json={"grid": "grid-01", "category": "city_management",
                                                    "title": "人行道占道经营"})
        assert r.status_code == 201 and r.json()["status"] == "reported", r.text
        case_id = r.json()["id"]
        row = f"tr[data-case='{case_id}']"

        street = person_login(browser, hub, "li.na", "S3cret-pw-2026")
        street.wait_for_selector("#queues button[data-queue='q_dispatch']")
        assert street.inner_text("#queues button[data-queue='q_dispatch']").endswith("1")
        street.click("#queues button[data-queue='q_dispatch']")
        street.wait_for_function("() => document.querySelectorAll('#cases tbody tr').length === 1")
        street.click(row)
        street.wait_for_selector("#detail #stages li[data-stage='dispatch'][data-state='running']")
        assert street.query_selector("#actions button[data-action='accept']") is None  # not hers to sign for
        street.select_option("#dispatch-unit", "dept-cg-1")
        street.fill("#action-note", "请城管中队到场处置")
        street.click("#actions button[data-action='dispatch']")
        street.wait_for_selector("#detail #stages li[data-stage='dispatch'][data-state='done']")
        street.wait_for_selector("#detail #stages li[data-stage='accept'][data-state='running']")
        shot = OUT / "board-stages.png"
        box = settled_box(street, "#stages")
        street.screenshot(path=str(shot), clip={"x": max(0, box["x"] - 24), "y": max(0, box["y"] - 24),
                                                "width": box["width"] + 48, "height": box["height"] + 48})
        text = ocr(doubled(shot), "chi_sim")
        for word in ("派单", "签收", "办理", "核查", "回访"):
            assert word in text, (word, text)

        squad = person_login(browser, hub, "wang.qiang", "S3cret-pw-2026")
        squad.click(row)
        squad.click("#actions button[data-action='accept']")
        squad.wait_for_selector("#actions button[data-action='resolve']")
        squad.fill("#action-note", "摊位已清理")
        squad.click("#actions button[data-action='resolve']")
        squad.wait_for_selector("#detail #stages li[data-stage='feedback'][data-state='running']")
        assert squad.query_selector("#actions button[data-action='close']") is None  # not his own result
        squad.close()

        grid = person_login(browser, hub, "zhang.wei", "S3cret-pw-2026")
        grid.click(row)
        grid.wait_for_selector("#actions button[data-action='close']")
        assert grid.query_selector("#actions button[data-action='reject']") is not None
        grid.click("#actions button[data-action='close']")
        grid.wait_for_selector("#detail #stages li[data-stage='callback'][data-state='running']")
        grid.close()

        street.click("#close-detail")
        street.click("#queues button[data-queue='q_dispatch']")  # off again: the callback queue holds it now
        street.wait_for_function("() => document.querySelector(\"#queues button[data-queue='q_callback']\").textContent"
                                 ".endsWith('1')")
        street.click("#queues button[data-queue='q_callback']")
        street.click(row)
        street.wait_for_selector("#actions button[data-action='callback']")
        street.select_option("#callback-rating", "satisfied")
        street.fill("#action-note", "居民表示满意")
        street.click("#actions button[data-action='callback']")
        street.wait_for_selector("#detail #stages li[data-stage='callback'][data-state='done']")
        shot = OUT / "board-stages-done.png"
        street.locator("#detail").screenshot(path=str(shot))
        text = ocr(doubled(shot))
        assert "满意" in text and "已结案" in text, text
        detail = hub.get(f"/api/v1/cases/{case_id}")
        assert (detail["status"], detail["rating"]) == ("closed", "satisfied")
        by = {e["action"]: e["detail"].get("by") for e in detail["timeline"]}
        assert (by["dispatch"], by["accept"], by["close"], by["callback"]) == ("李娜", "王强", "张伟", "李娜")
    finally:
        hub.stop()
