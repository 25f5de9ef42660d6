"""Make `docs/board.png` and `docs/board-case.png` for the README: the demo hub with a set of cases
whose clocks have run for a while, seen by the district operator in headless Chromium.

    .venv/bin/python scripts/board_screenshot.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from edge.message import Event  # noqa: E402
from edge.video.evidence import snapshot  # noqa: E402
from simulators.scenes import CameraSim, View, Walker  # noqa: E402
from simulators.services import free_port, stop_pid, wait_port  # noqa: E402

EDGE, OPS = "demo-edge-key", "demo-operator-key"  # DEMO keys, configs/demo/hub.yaml
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
CASES = [("grid-02", "gas-03", "gas_leak", "critical", "CH4 6210 ppm at gas-03"),
         ("grid-02", "water-01", "flood", "major", "water rising 1.02 m per 10 s"),
         ("grid-03", "fence-01", "intrusion", "major", "fence breach, zone north"),
         ("grid-07", "cam-08", "tamper", "minor", "lens-tamper at cam-08"),
         ("grid-01", "gas-02", "device_offline", "minor", "sensor-silent at gas-02"),
         ("grid-03", "th-01", "fire", "critical", "hot spot 142 °C at th-01")]


def camera_evidence() -> str:
    cam = CameraSim(7)
    walker = Walker(((0.9, 0.75), (0.2, 0.8)), start=0.0, speed=0.3)
    jpeg = cam.jpeg(2.0, View(walkers=[walker]))
    ev = Event(kind="camera", grid="grid-07", device="cam-07", ts=time.time(), received_at=time.time(),
               extra={"jpeg": jpeg})
    zone = [(0.0, 0.55), (0.45, 0.55), (0.45, 1.0), (0.0, 1.0)]
    return snapshot(ev, [zone], [(0.3, 0.55, 0.07, 0.27)], "yard-intrusion cam-07") or ""


def alert(i: int, grid: str, device: str, category: str, severity: str, message: str, evidence: dict) -> dict:
    now = datetime.now(UTC).isoformat()
    return {"alert_id": f"shot-{i}-{time.time_ns()}", "state": "firing", "rule_id": "demo", "edge_id": "edge-demo",
            "device_id": device, "grid_id": grid, "kind": "camera" if evidence else "sensor", "category": category,
            "severity": severity, "started_at": now, "observed_at": now, "value": None, "message": message,
            "labels": {}, "evidence": evidence}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        cfg = yaml.safe_load((ROOT / "configs/demo/hub.yaml").read_text())
        port = free_port()
        cfg.update(database=f"sqlite:///{tmp / 'hub.sqlite'}", listen={"host": "127.0.0.1", "port": port},
                   org=str(ROOT / "configs/org.yaml"), sla=str(ROOT / "configs/demo/sla.yaml"),
                   calendars=str(ROOT / "configs/calendars"))
        (tmp / "hub.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
        hub = subprocess.Popen([sys.executable, "-m", "gridwatch", "hub", "serve", "-c", str(tmp / "hub.yaml")])
        url = f"http://127.0.0.1:{port}"
        try:
            wait_port(port, 30, hub)
            post = lambda alerts: httpx.post(f"{url}/api/v1/alerts", json={"alerts": alerts},  # noqa: E731
                                             headers={"Authorization": f"Bearer {EDGE}"}).raise_for_status()
            post([alert(0, "grid-07", "cam-07", "intrusion", "major", "motion in the yard zone of cam-07",
                        {"snapshot_jpeg_b64": camera_evidence()})])
            for i, c in enumerate(CASES[:3], 1):
                post([alert(i, *c, {})])
            time.sleep(14)
            for i, c in enumerate(CASES[3:], 4):
                post([alert(i, *c, {})])
            time.sleep(9)
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = b.new_page(viewport={"width": 1400, "height": 420})
                page.goto(url + "/")
                page.fill("#key", OPS)
                page.click("#login-form button[type=submit]")
                page.wait_for_selector("#live.on")
                page.wait_for_timeout(1500)
                page.screenshot(path=str(ROOT / "docs/board.png"))
                page.set_viewport_size({"width": 1400, "height": 900})
                page.click("tr[data-case] >> text=intrusion")
                page.wait_for_selector("#detail img[src^='blob:']")
                page.wait_for_timeout(500)
                page.screenshot(path=str(ROOT / "docs/board-case.png"))
                b.close()
        finally:
            stop_pid(hub)
    print("docs/board.png, docs/board-case.png")


if __name__ == "__main__":
    main()
