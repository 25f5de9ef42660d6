"""视频复核 through an ONVIF PTZ camera (issue 41): a gas sensor linked to the camera and its preset 2 raises an
alert; the camera gateway reads the look, sends `GotoPreset` (ONVIF PTZ Service), gives the dome its settle,
fetches the snapshot (`GetSnapshotUri`, HTTP digest) and the case has the picture after the move within 10 s.
The emulated dome takes a second to turn, and its snapshot shows the view it left until it gets there."""

from __future__ import annotations

import io
import time
from datetime import datetime

import cv2
import httpx
import numpy as np
import pytest

from edge.camera_gateway.config import CameraGatewayConfig
from edge.camera_gateway.gateway import CameraGateway
from simulators import footage
from simulators.onvif_camera import OnvifCameraEmulator
from tests.agentkit import wait_until
from tests.hubkit import OPS, Hub
from tests.test_board_browser import alert
from tests.test_gb28181 import SLA
from tests.test_gb28181_look import unlike, zoomed


@pytest.mark.e2e  # make e2e-test: a hub, the camera gateway and an ONVIF dome
def test_a_gas_alert_turns_its_onvif_dome_to_the_preset_and_the_case_gets_the_snapshot_after_the_move(broker,
                                                                                                     tmp_path):
    street = next(footage.frames(footage.clip(), 1))  # OpenCV's vtest.avi, its first frame
    views = {0: street, 2: zoomed(0, street)}
    jpegs = {n: cv2.imencode(".jpg", img)[1].tobytes() for n, img in views.items()}
    emu = OnvifCameraEmulator(views=jpegs, move_seconds=1.0).start()
    hub = Hub(tmp_path / "hub", SLA).start()
    cfg = CameraGatewayConfig.model_validate({
        "mqtt": {"host": broker.host, "port": broker.port}, "client_id": "camgw-look",
        "cameras": [{"id": "cam-dome-1", "grid": "grid-01",
                     "ptz": {"url": emu.url, "username": "admin", "password": "12345"}}],
        "hub": {"url": hub.url, "key": OPS}})
    gw = CameraGateway(cfg)
    try:
        gw.start()
        assert gw.looks is not None and gw.looks.ready.wait(15)  # started: the dome's ONVIF services reached once
        for body in ({"id": "cam-dome-1", "kind": "camera", "grid": "grid-01", "name": "高点球机"},
                     {"id": "gas-0101", "kind": "sensor", "grid": "grid-01", "camera": "cam-dome-1", "preset": 2}):
            r = hub.call("PUT", f"/api/v1/devices/{body['id']}", json=body)
            assert r.status_code == 200, r.text
        raised = time.monotonic()
        case_id = hub.post([alert(1, "grid-01", device="gas-0101")])[0]["case_id"]  # CH4 6200 ppm

        def photos() -> list[dict]:
            return hub.get(f"/api/v1/cases/{case_id}")["photos"]
        assert wait_until(photos, 15), hub.get(f"/api/v1/cases/{case_id}")["timeline"]
        took = time.monotonic() - raised
        assert took < 10, took
        assert emu.gotos == [("Profile_1", "2")] and emu.snapshots == 1 and emu.status_reads >= 2  # asked till IDLE
        (photo,) = photos()
        assert photo["note"] == "视频复核 · cam-dome-1 · 预置位 2"
        jpeg = hub.call("GET", photo["url"].removeprefix(hub.url)).content
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        after, before = unlike(img, views[2]), unlike(img, views[0])
        assert after < 2 < before, (after, before)  # the preset's view: fetched once the dome got there
        assert emu.challenged == 1 and emu.refused == 0  # challenged once, then answered with the right digest
        # the emulator checks the digest as a camera does (httpx's own RFC 7616 client, not ours, on both sides)
        snap = f"{emu.url}/onvif/snapshot.jpg"
        assert httpx.get(snap, auth=httpx.DigestAuth("admin", "guess")).status_code == 401 and emu.refused == 1
        assert httpx.get(snap, auth=httpx.DigestAuth("admin", "12345")).content == jpegs[2]

        # an operator asks again from the case page, naming a preset the dome does not have: it says why
        r = hub.call("POST", f"/api/v1/cases/{case_id}/look", json={"preset": 7})
        assert r.status_code == 201, r.text
        assert wait_until(lambda: any(e["action"] == "look_done" and e["detail"]["result"] == "failed"
                                      for e in hub.get(f"/api/v1/cases/{case_id}")["timeline"]), 15)
        failed = [e["detail"] for e in hub.get(f"/api/v1/cases/{case_id}")["timeline"]
                  if e["action"] == "look_done" and e["detail"]["result"] == "failed"]
        assert "NoToken" in failed[0]["reason"] or "Fault" in failed[0]["reason"], failed
        assert gw.looks.results == {"posted": 1, "failed": 1}
        print(f"\n视频复核 (ONVIF): alert -> snapshot after the turn {took:.1f} s (settle at most {cfg.look_settle} s, "
              f"the dome turns in {emu.move_seconds} s, {emu.status_reads} status readings); difference to the "
              f"preset's view {after:.1f}, to the view before {before:.1f}")
    finally:
        gw.stop()
        hub.stop()
        emu.stop()


@pytest.mark.e2e  # make e2e-test: an RTSP server, an ONVIF camera's events, the camera gateway, an agent, a hub
def test_an_onvif_cameras_alarm_case_gets_the_frame_at_the_alarm_and_an_mp4_of_the_seconds_around_it(broker,
                                                                                                     tmp_path):
    """Evidence with every alarm for RTSP/ONVIF cameras: the camera streams real footage over RTSP and raises a
    line-crossing event over ONVIF; the shipped rules open the case; the camera gateway adds the frame at the
    alarm (报警抓拍) and an H.264 MP4 of its frames from ten seconds before to five after (报警录像)."""
    from pathlib import Path

    import av

    from edge.agent import Agent
    from simulators.services import free_port
    from tests.agentkit import agent_config
    from tests.footagekit import h264
    from tests.hubkit import EDGE
    from tests.test_camera_gateway import start_rtsp

    clip = h264("vtest-768-gop10", seconds=70, gop=10)
    port = free_port()
    rtsp = start_rtsp(port, clip)
    emu = OnvifCameraEmulator().start()
    hub = Hub(tmp_path / "hub", SLA).start()
    agent = Agent(agent_config(tmp_path / "agent", broker, hub.url, Path("configs/rules.yaml").read_text(),
                               hub={"key": EDGE}))
    cfg = CameraGatewayConfig.model_validate({
        "mqtt": {"host": broker.host, "port": broker.port}, "client_id": "camgw-evidence",
        "cameras": [{"id": "cam-01", "grid": "grid-01", "url": f"rtsp://127.0.0.1:{port}/cam-01",
                     "sample_every": "500ms",
                     "alarms": [{"kind": "onvif", "url": emu.url, "username": "admin", "password": "12345"}]}],
        "hub": {"url": hub.url, "key": OPS}})
    gw = CameraGateway(cfg)
    try:
        agent.start()
        assert agent.mqtt.wait_connected(10)
        gw.start()
        assert wait_until(lambda: emu.connected() == 1 and gw.cams["cam-01"].stats.published > 25, 30)  # 12 s in
        alarm_at = time.time()
        emu.send("tns1:RuleEngine/LineDetector/Crossed", {"ObjectId": "3"},
                 {"VideoSourceConfigurationToken": "1", "Rule": "北门越线"})

        def case() -> dict | None:
            got = next((x for x in hub.get("/api/v1/cases")["cases"] if x["device"] == "cam-01"), None)
            return hub.get(f"/api/v1/cases/{got['id']}") if got else None
        assert wait_until(lambda: (case() or {}).get("clips"), 40), case()
        got = case()
        assert got is not None
        (photo,), (clip_,) = got["photos"], got["clips"]
        assert "报警抓拍" in photo["note"] and "line_crossing" in photo["note"]
        jpeg = hub.call("GET", photo["url"].removeprefix(hub.url)).content
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape[1] == 640
        start, end = (datetime.fromisoformat(clip_[k]).timestamp() for k in ("start", "end"))
        assert alarm_at - 10.6 <= start <= alarm_at - 9 and alarm_at + 4 <= end <= alarm_at + 5.6, (
            start - alarm_at, end - alarm_at)
        mp4 = hub.call("GET", clip_["url"].removeprefix(hub.url)).content
        with av.open(io.BytesIO(mp4)) as f:
            v = f.streams.video[0]
            assert v.codec_context.name == "h264"
            frames = list(f.decode(v))
        assert 27 <= len(frames) <= 32, len(frames)  # two frames a second for fifteen seconds
        assert 13.5 <= float(frames[-1].pts * frames[-1].time_base) <= 15.5  # at the frames' own times
        assert gw.evidence is not None and gw.evidence.results["clip_posted"] == 1
    finally:
        gw.stop()
        agent.stop()
        hub.stop()
        emu.stop()
        rtsp.kill()
