"""The board as people see it (issue 14), in Debian's Chromium with no system CJK font at all (fontconfig is
pointed at the Latin fonts only, and the test proves no font of that configuration covers Chinese):

- the login page, the wall, a case page and the phone view are screenshotted (test-output/) and Debian's
  tesseract with its simplified-Chinese data reads the key labels back from the pixels;
- every element whose text is Chinese is painted with the bundled face (Chromium's own account of the fonts
  it used for the node, over the DevTools protocol), form controls included;
- at 390x844 a grid worker opens a case from the list, accepts it, attaches a photo and sees it on the page;
- on the wall, a case turning red flashes its row and calls the alarm sound within 1 s of the light change.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import CHROMIUM_ARGS
from tests.hubkit import OPS, Hub

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # make browser-test: keeps make test inside its ten minutes
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test-output"
SLA = """
policies:
  - id: fast
    match: {categories: [gas_leak]}
    calendar: 24x7
    start_level: district   # nowhere to escalate to: once red, it stays red
    limits: {accept: 4s, resolve: 60s, feedback: 60s}
    yellow_at: 0.5
    remind_every: 60s
  - id: slow
    calendar: 24x7
    limits: {accept: 2h, resolve: 8h, feedback: 8h}
"""
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + bytes(range(64)) + bytes.fromhex(
    "ffc0000b080001000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffda0008"
    "010100003f00d2cf20ffd9")
CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.fixture(scope="module")
def bare_browser(tmp_path_factory) -> Iterator[Any]:
    """Chromium that sees only Debian's Latin fonts: like a fresh machine without fonts-noto-cjk."""
    from playwright.sync_api import sync_playwright

    conf_dir = tmp_path_factory.mktemp("fontconfig")
    dirs = [d for d in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation") if Path(d).is_dir()]
    conf = conf_dir / "fonts.conf"
    conf.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
                    + "".join(f"  <dir>{d}</dir>\n" for d in dirs)
                    + f"  <cachedir>{conf_dir / 'cache'}</cachedir>\n</fontconfig>\n")
    env = {**os.environ, "FONTCONFIG_FILE": str(conf)}
    chinese = subprocess.run(["fc-list", ":lang=zh"], env=env, capture_output=True, text=True, check=True).stdout
    assert chinese.strip() == "", f"a CJK font is visible to the browser: {chinese}"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, env=env)
        yield b
        b.close()


def ocr(png: Path, langs: str = "chi_sim+eng") -> str:
    """What tesseract reads in the screenshot (simplified Chinese and English), without whitespace. The
    light-on-dark page is turned into dark text on white first (grey, inverted, thresholded: Pillow), and read
    as one block and as sparse text (a label alone in a button is found by the second). `langs`: chi_sim alone
    for a view of Chinese words and numbers (the English model reads a lone bold 派单 as "me")."""
    from PIL import Image, ImageOps

    plain = png.with_suffix(".ocr.png")
    ImageOps.invert(Image.open(png).convert("L")).point(lambda p: 0 if p < 150 else 255).save(plain)
    try:
        out = [subprocess.run(["tesseract", str(plain), "stdout", "-l", langs, "--psm", psm],
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "OMP_THREAD_LIMIT": "1"}).stdout  # threads only thrash here
               for psm in ("6", "11")]
    finally:
        plain.unlink()
    return re.sub(r"\s+", "", "|".join(out))


def alert(n: int, grid: str, category: str = "gas_leak", severity: str = "critical", **more: Any) -> dict:
    now = datetime.now(UTC).isoformat()
    return {"alert_id": f"v{n:04d}-{time.time_ns()}", "state": "firing", "rule_id": "gas-high", "edge_id": "e",
            "device_id": f"gas-{n:02d}", "grid_id": grid, "kind": "sensor", "category": category,
            "severity": severity, "started_at": now, "observed_at": now, "value": 6200.0,
            "message": "甲烷浓度 6200 ppm，超过阈值", "labels": {}, "evidence": {},
            "place": {"name": f"{n}号燃气阀井", "address": "西门菜市场北侧", "lat": 31.23, "lon": 121.47}, **more}


def open_page(browser, hub: Hub, *, width: int, height: int, path: str = "/", scale: float = 1) -> Any:
    ctx = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=scale,
                              is_mobile=width < 600, has_touch=width < 600, locale="zh-CN",
                              timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    page.goto(hub.url + path)
    page.wait_for_function("() => !document.documentElement.classList.contains('fonts-loading')")
    return page


def login(page, key: str = OPS) -> None:
    page.fill("#key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#board:not([hidden])")
    page.wait_for_selector("#live.on", timeout=10_000)


def fonts_of_chinese_text(page) -> list[tuple[str, list[dict]]]:
    """The rendered elements whose Chinese characters were not all drawn with the bundled face, as Chromium
    reports the fonts and glyph counts it painted each node's text with (CSS.getPlatformFontsForNode). A
    live page may re-render a part while it is probed (an event, the queues): then the probe is made again."""
    for _ in range(4):
        bad = _fonts_of_chinese_text(page)
        if bad is not None:
            return bad
        page.wait_for_timeout(300)
    raise AssertionError("the page kept re-rendering while its fonts were probed")


def _fonts_of_chinese_text(page) -> list[tuple[str, list[dict]]] | None:
    texts = page.evaluate("""() => { const out = []; let i = 0;
        for (const el of document.querySelectorAll('body *')) {
          const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.nodeValue).join('');
          if (/[\\u3400-\\u9fff]/.test(own) && el.getClientRects().length && el.tagName !== 'OPTION') {
            el.dataset.probe = String(i++); out.push(own); } }
        return out; }""")
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    bad = []
    for i, own in enumerate(texts):
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": f"[data-probe='{i}']"})["nodeId"]
        if not node:  # re-rendered since the probe
            cdp.detach()
            return None
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        bundled = sum(f["glyphCount"] for f in fonts if f["isCustomFont"])
        if bundled < len(CJK.findall(own)):  # a Chinese character drawn by a system face: a box
            bad.append((own.strip()[:30], fonts))
    assert texts, "no Chinese text found on the page"
    cdp.detach()
    return bad


def opened_today(hub: Hub) -> int:
    """The cases opened on the hub's local day (Asia/Shanghai) as it is now: the three this test opens, or fewer
    when the run crosses local midnight (16:00 UTC; CI once failed on a hard-coded 3 at 16:00 UTC)."""
    tz = ZoneInfo("Asia/Shanghai")
    today = datetime.now(tz).date()
    return sum(1 for c in hub.get("/api/v1/cases")["cases"]
               if datetime.fromisoformat(c["opened_at"]).astimezone(tz).date() == today)


def test_chinese_is_read_back_from_the_pixels_of_every_view(tmp_path, bare_browser):
    hub = Hub(tmp_path, SLA, labels=str(ROOT / "configs/labels.yaml")).start()
    OUT.mkdir(exist_ok=True)
    try:
        late = hub.post([alert(1, "grid-02")])[0]["case_id"]
        hub.post([alert(2, "grid-03", category="intrusion", severity="major")])
        time.sleep(5)  # the gas case passes its 4 s accept limit: red and overdue
        page = open_page(bare_browser, hub, width=1280, height=720, scale=2)
        shot = OUT / "board-login.png"
        page.screenshot(path=str(shot))
        text = ocr(shot)
        assert "登录" in text and "访问密钥" in text, text
        login(page)
        assert fonts_of_chinese_text(page) == []
        page.wait_for_selector(f"tr[data-case='{late}'][data-light='red']", timeout=10_000)
        shot = OUT / "board-cases.png"
        page.screenshot(path=str(shot))
        text = ocr(shot)
        for word in ("案件", "超时", "红灯", "燃气泄漏", "责任单位"):
            assert word in text, (word, text)
        page.click(f"tr[data-case='{late}']")
        page.wait_for_selector("#detail:not([hidden]) button[data-action='accept']")
        assert fonts_of_chinese_text(page) == []
        shot = OUT / "board-case.png"
        page.locator("#detail").screenshot(path=str(shot))
        text = ocr(shot)
        for word in ("签收", "处置过程", "立案"):
            assert word in text, (word, text)
        page.context.close()

        # an early warning (预警) that fired orange and climbed to red: one case, the level in its colour
        flood = alert(3, "grid-01", category="flood", severity="major", warning="orange",
                      message="橙色预警（Ⅱ级）：积水内涝：water-41，预计约 13 分钟后达到 2.5")
        warned = hub.post([flood])[0]["case_id"]
        red = {**flood, "state": "warning", "warning": "red", "warning_seq": 1, "severity": "critical",
               "message": "红色预警（Ⅰ级）：积水内涝：water-41，预计约 4 分钟后达到 2.5"}
        assert hub.post([red])[0]["case_id"] == warned
        wall = open_page(bare_browser, hub, width=1920, height=1080, path="/?wall=1")
        login(wall)
        wall.wait_for_selector(f"tr[data-case='{late}'][data-light='red']")
        wall.wait_for_function("n => document.querySelector('#n-opened_today').textContent === n",
                               arg=str(opened_today(hub)), timeout=10_000)  # 3, unless local midnight came between
        badge = wall.locator(f"tr[data-case='{warned}'] .warn[data-warning='red']")
        assert badge.inner_text() == "红色预警"
        assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(217, 32, 44)"
        shot = OUT / "board-wall.png"
        wall.screenshot(path=str(shot))
        text = ocr(shot)
        for word in ("红灯", "今日超时", "今日办结", "燃气泄漏", "甲烷浓度", "红色预警"):
            assert word in text, (word, text)
        assert fonts_of_chinese_text(wall) == []
        wall.context.close()

        phone = open_page(bare_browser, hub, width=390, height=844, scale=2)
        login(phone)
        phone.wait_for_selector(f"tr[data-case='{late}']")
        shot = OUT / "board-phone.png"
        phone.screenshot(path=str(shot))
        text = ocr(shot)
        for word in ("案件看板", "燃气泄漏", "红灯"):
            assert word in text, (word, text)
        phone.context.close()
    finally:
        hub.stop()


def test_a_grid_worker_on_a_phone_opens_acts_and_attaches_a_photo(tmp_path, bare_browser):
    hub = Hub(tmp_path, SLA).start()
    try:
        case_id = hub.post([alert(3, "grid-01", category="intrusion", severity="major")])[0]["case_id"]
        page = open_page(bare_browser, hub, width=390, height=844)
        login(page)
        row = f"tr[data-case='{case_id}']"
        page.wait_for_selector(row)
        # a card, not a table wider than the phone
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.tap(f"{row} td.c-category")
        page.wait_for_selector("#detail:not([hidden]) button[data-action='accept']")
        box = page.locator("#detail").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 0.5  # the case page is on the screen
        acts = sorted(b.get_attribute("data-action") for b in page.query_selector_all("#actions button"))
        # only what the hub allows now: the case's actions, and the district's controls (延期 as its holder,
        # 督办 as the level above the grid that owns it)
        assert acts == ["accept", "comment", "dispatch", "extension", "hold", "supervise", "transfer"]
        assert page.query_selector("#actions button[data-action='resolve']") is None
        page.tap("#actions button[data-action='accept']")
        page.wait_for_selector(f"{row}[data-status='accepted']", timeout=5_000)
        page.wait_for_selector("#actions button[data-action='resolve']")
        page.set_input_files("#photo-input", files=[{"name": "site.jpg", "mimeType": "image/jpeg", "buffer": JPEG}])
        page.wait_for_selector("#detail .evidence figure img[src^='blob:']", timeout=5_000)
        assert "照片" in page.inner_text("#detail .evidence figcaption")
        assert page.locator("#detail ol.timeline li[data-action='photo']").count() == 1
        detail = hub.get(f"/api/v1/cases/{case_id}")
        assert len(detail["photos"]) == 1 and detail["status"] == "accepted"
        # a refused action says why in the page's language
        page.tap("#actions button[data-action='resolve']")  # without a note
        page.wait_for_function("() => document.querySelector('#action-error').textContent.includes('需要填写说明')")
        # one-key report (一键上报) from the phone: category, tier, place and a photo
        page.tap("#close-detail")
        page.tap("#report-open")
        page.select_option("#rp-grid", "grid-01")
        page.select_option("#rp-category", "garbage" if page.query_selector("#rp-category option[value=garbage]")
                           else "other")
        page.select_option("#rp-tier", "important")
        page.fill("#rp-title", "楼道口堆放大量建筑垃圾")
        page.fill("#rp-place", "光明小区3号楼东侧")
        page.set_input_files("#rp-photo", files=[{"name": "r.jpg", "mimeType": "image/jpeg", "buffer": JPEG}])
        page.tap("#report-form button[type=submit]")
        page.wait_for_selector("#detail:not([hidden]) #detail-body .evidence img[src^='blob:']", timeout=5_000)
        reported = page.get_attribute("#detail", "data-case")
        got = hub.get(f"/api/v1/cases/{reported}")
        assert got["manual"] and got["title"] == "楼道口堆放大量建筑垃圾" and got["grid"] == "grid-01"
        assert got["place"]["address"] == "光明小区3号楼东侧" and len(got["photos"]) == 1
        assert got["policy"] == "manual-important"
        # back to the list; the analysis view fits the width
        page.tap("#close-detail")
        page.tap("#tabs button[data-tab='analysis']")
        page.wait_for_selector("#ch-category svg")
        assert page.evaluate("document.querySelector('#ch-category svg').getBoundingClientRect().right") <= 390
        page.context.close()
    finally:
        hub.stop()


def test_the_wall_flashes_and_sounds_within_a_second_of_red(tmp_path, bare_browser):
    hub = Hub(tmp_path, SLA).start()
    try:
        page = open_page(bare_browser, hub, width=1920, height=1080, path="/?wall=1")
        login(page)
        page.click("#sound-gate")  # the one click the browser's autoplay rule asks for
        page.wait_for_selector("#sound-gate", state="hidden")
        # the page's audio element is watched: each play() call is recorded with its time
        page.evaluate("""() => { window.played = []; const orig = HTMLMediaElement.prototype.play;
            HTMLMediaElement.prototype.play = function () {
              window.played.push(performance.now()); return orig.call(this); }; }""")
        case_id = hub.post([alert(4, "grid-02", category="gas_leak", severity="major")])[0]["case_id"]
        row = f"tr[data-case='{case_id}']"
        page.wait_for_selector(f"{row}[data-light='green'], {row}[data-light='yellow']", timeout=5_000)
        assert page.evaluate("window.played.length") == 0  # a major, green case: no alarm yet
        opened = datetime.fromisoformat(hub.get(f"/api/v1/cases/{case_id}")["opened_at"])
        page.wait_for_selector(f"{row}.flash", timeout=10_000)
        alarm = page.evaluate(f"window.gridwatch.alarms.find(a => a.case_id === '{case_id}')")
        assert alarm["why"] == "red" and alarm["sound"] is True
        played = page.evaluate("window.played")
        assert played and abs(played[0] - alarm["at"]) < 50
        # the light changed at opened + 4 s (the accept limit); the alarm came within 1 s of it
        page_now = page.evaluate("[performance.now(), Date.now()]")
        alarm_wall = (page_now[1] - (page_now[0] - alarm["at"])) / 1000
        assert 0 <= alarm_wall - (opened.timestamp() + 4) <= 1.0, alarm_wall - opened.timestamp()
        # a new critical case alarms at once
        crit = hub.post([alert(5, "grid-03", category="fire", severity="critical")])[0]["case_id"]
        page.wait_for_selector(f"tr[data-case='{crit}'].flash", timeout=5_000)
        assert len(page.evaluate("window.played")) == 2, page.evaluate("window.gridwatch.alarms")
        # muted: rows still flash, no sound
        page.click("#mute")
        hub.post([alert(6, "grid-03", category="fire", severity="critical")])
        page.wait_for_function("() => window.gridwatch.alarms.length === 3", timeout=5_000)
        assert len(page.evaluate("window.played")) == 2
        # the connection indicator goes amber when the stream is lost, red after 10 s, green when back
        hub.stop()
        page.wait_for_selector("#live.reconnecting", timeout=10_000)
        page.wait_for_selector("#live.lost", timeout=15_000)
        hub.start()
        page.wait_for_selector("#live.on", timeout=15_000)
        page.context.close()
    finally:
        hub.stop()


def test_tesseract_reads_chinese_here():
    """The OCR the view test relies on is installed and reads simplified Chinese (a guard, not a check of the
    board: without it, the view test would fail for the wrong reason)."""
    assert shutil.which("tesseract") is not None
    langs = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=True).stdout.split()
    assert "chi_sim" in langs
