"""视频复核 through a GB/T 28181 platform (issue 41): a gas sensor whose registry entry names the PTZ channel and
preset that cover it raises an alert; its case asks that camera to look; the gateway reads the look, sends the
platform the preset call (`PTZCmd` A50F0182…, GB/T 28181-2016 A.3.5), lets the dome settle, INVITEs the channel
and puts its first frame on the case, within 10 s of the alert. The emulated platform streams another view
once turned (a zoom on the same real footage), so the picture shows what the camera saw after the move."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from simulators.gb28181 import GbDevice, make_channels
from tests.agentkit import wait_until
from tests.footagekit import h264
from tests.hubkit import Hub
from tests.test_board_browser import alert
from tests.test_gb28181 import DOMAIN, PLATFORM, SERVER, SLA, gateway


def zoomed(_: int, img: np.ndarray) -> np.ndarray:
    """Preset 3's view: the dome zoomed on the upper left of the street (the same real footage)."""
    h, w = img.shape[:2]
    return cv2.resize(img[: h // 2, : w // 2], (w, h), interpolation=cv2.INTER_LINEAR)


def first_frame(path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    ok, img = cap.read()
    cap.release()
    assert ok
    return img


def unlike(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two pictures, small and grey (JPEG and scaling do not count)."""
    small = [cv2.cvtColor(cv2.resize(x, (96, 72), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY).astype(float)
             for x in (a, b)]
    return float(np.abs(small[0] - small[1]).mean())


@pytest.mark.e2e  # make e2e-test: a hub, the gateway and a platform streaming real footage
def test_a_gas_alert_turns_its_ptz_camera_to_the_preset_and_the_case_gets_the_picture_after_the_move(broker, tmp_path):
    street = h264("vtest-768-gop10", seconds=70, gop=10)
    zoom = h264("vtest-768-gop10-zoom", seconds=20, gop=10, transform=zoomed)
    hub = Hub(tmp_path / "hub", SLA).start()
    channels = make_channels(4)
    c = channels[1]  # civil code 440305002: grid-02
    gw = gateway(broker, "gb-look", hub=hub)
    plat = GbDevice(("127.0.0.1", gw.port), SERVER, DOMAIN, PLATFORM, "test-only-pw-1", channels=channels,
                    footage=street, presets={3: zoom}).start()
    try:
        assert plat.register() == 200
        assert wait_until(lambda: any(d["id"] == c.id for d in hub.get("/api/v1/devices?q=" + c.id)["devices"]), 15)
        r = hub.call("PUT", "/api/v1/devices/gas-0201", json={
            "id": "gas-0201", "kind": "sensor", "grid": "grid-02", "name": "燃气井 0201", "camera": c.id, "preset": 3})
        assert r.status_code == 200, r.text
        raised = time.monotonic()
        case_id = hub.post([alert(1, "grid-02", device="gas-0201")])[0]["case_id"]  # CH4 6200 ppm

        def photos() -> list[dict]:
            return hub.get(f"/api/v1/cases/{case_id}")["photos"]
        assert wait_until(photos, 15), hub.get(f"/api/v1/cases/{case_id}")["timeline"]
        took = time.monotonic() - raised
        assert took < 10, took
        assert plat.ptz == [(c.id, 0x82, 3)] and plat.preset == {c.id: 3}  # one preset call, preset 3
        (photo,) = photos()
        assert photo["note"] == f"视频复核 · {c.id} · 预置位 3"
        jpeg = hub.call("GET", photo["url"].removeprefix(hub.url)).content
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        after, before = unlike(img, first_frame(zoom)), unlike(img, first_frame(street))
        assert after < 8 < before, (after, before)  # the zoomed view: taken after the turn, not before it
        invites = [m for m in plat.got if m.method == "INVITE"]
        ptz_at = next(i for i, m in enumerate(plat.got) if b"<PTZCmd>" in m.body)
        assert len(invites) == 1 and plat.got.index(invites[0]) > ptz_at  # turned, then asked for video
        timeline = hub.get(f"/api/v1/cases/{case_id}")["timeline"]
        done = [e["detail"] for e in timeline if e["action"] == "look_done"]
        assert [(d["camera"], d["preset"], d["result"]) for d in done] == [(c.id, 3, "snapshot")]
        assert hub.get("/api/v1/looks")["looks"] == []
        print(f"\n视频复核: alert -> picture after the turn {took:.1f} s (settle {gw.cfg.look_settle} s); "
              f"difference to the preset's view {after:.1f}, to the view before {before:.1f}")
    finally:
        plat.close()
        gw.stop()
        hub.stop()
