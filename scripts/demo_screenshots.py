"""Make `docs/demo-board.png` and `docs/demo-wall.png`: `make demo` itself (broker, hub, agent, simulated gateways,
its registered devices) after 45 s, seen in headless Chromium (zh-CN, Asia/Shanghai) by the district operator on
a desk screen and on the wall. Then reads them back with tesseract (simplified Chinese) and fails if the Chinese
case content or a place is missing.

    .venv/bin/python scripts/demo_screenshots.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from simulators.services import free_port, stop_pid, wait_port  # noqa: E402
from tests.test_board_views import ocr  # noqa: E402

OPS = "demo-operator-key"  # DEMO key, configs/demo/hub.yaml
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
WANT = {"demo-board.png": ("甲烷浓度", "光明七区", "电子围栏", "待签收", "积水内涝"),
        "demo-wall.png": ("甲烷浓度", "幸福小区", "红灯", "积水内涝", "今日超时")}


def main() -> int:
    port = free_port()
    demo = subprocess.Popen([sys.executable, "-m", "gridwatch.demo", "--port", str(port), "--duration", "120"],
                            stdout=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    missing: list[str] = []
    try:
        wait_port(port, 30, demo)
        time.sleep(45)  # every scripted incident has opened its case; the first lights are red
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for name, size, path in (("demo-board.png", (1600, 700), "/"), ("demo-wall.png", (1920, 1080), "/?wall=1")):
                ctx = b.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN",
                                    timezone_id="Asia/Shanghai")
                page = ctx.new_page()
                page.goto(url + path)
                page.fill("#key", OPS)
                page.click("#login-form button[type=submit]")
                page.wait_for_selector("#live.on", timeout=15_000)
                page.wait_for_timeout(2000)
                shot = ROOT / "docs" / name
                page.screenshot(path=str(shot))
                text = ocr(shot)
                missing += [f"{name}: {w}" for w in WANT[name] if w not in text]
                shot.with_suffix(".ocr.png").unlink(missing_ok=True)
                ctx.close()
            b.close()
    finally:
        demo.send_signal(signal.SIGINT)  # the demo stops what it started (its broker) on Ctrl-C, not on SIGTERM
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            stop_pid(demo)
    print("docs/demo-board.png, docs/demo-wall.png" + (f"; not read back: {missing}" if missing else ""))
    return 1 if missing else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    sys.exit(main())
