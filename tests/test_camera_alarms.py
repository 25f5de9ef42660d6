"""Camera-native alarms in the vendors' wire formats (simulators/camera_alarms.py emulates them and cites
the documents): parsing at any chunking, start/stop edges, and each vendor's alarm through the camera
gateway, real Mosquitto and a running agent to an `event:` rule's alert."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.agent import Agent
from edge.camera_gateway.alarms import (
    AlarmFormatError,
    AlarmStates,
    CameraAlarm,
    MultipartReader,
    OnvifMessage,
    dahua_alarms,
    isapi_alarm,
    onvif_alarm,
)
from edge.camera_gateway.config import CameraGatewayConfig
from edge.camera_gateway.gateway import CameraGateway
from edge.camera_gateway.sources import parse_part
from simulators.camera_alarms import DAHUA_HEARTBEAT, CameraAlarmEmulator, dahua_part, isapi_part
from simulators.onvif_camera import OnvifCameraEmulator, notification
from tests.agentkit import agent_config, wait_until


def split(stream: bytes, kind: str, content_type: str, seed: int) -> list[CameraAlarm]:
    rnd = random.Random(seed)
    reader = MultipartReader.for_content_type(content_type)
    out: list[CameraAlarm] = []
    i = 0
    while i < len(stream):
        n = rnd.randint(1, 40)
        for headers, body in reader.feed(stream[i:i + n]):
            out.extend(parse_part(kind, headers, body))
        i += n
    return out


@pytest.mark.parametrize("seed", range(5))
def test_isapi_stream_split_anywhere_gives_its_alarms(seed):
    stream = (isapi_part("VMD", "active", 1) + isapi_part("videoloss", "inactive", 1)
              + isapi_part("linedetection", "active", 2, region=3) + isapi_part("fielddetection", "inactive", 1, 1)
              + isapi_part("shelteralarm", "active", 1) + isapi_part("diskfull", "active", 1))
    got = split(stream, "isapi", "multipart/mixed; boundary=boundary", seed)
    assert [(a.event, a.state, a.zone, a.channel) for a in got] == [
        ("motion", "start", "", 1), ("video_loss", "stop", "", 1), ("line_crossing", "start", "region-3", 2),
        ("intrusion", "stop", "region-1", 1), ("tamper", "start", "", 1)]  # diskfull is not a camera event
    assert got[0].ts is not None and got[0].code == "VMD"


@pytest.mark.parametrize("seed", range(5))
def test_dahua_stream_split_anywhere_gives_its_alarms(seed):
    stream = (dahua_part("VideoMotion", "Start", 0) + DAHUA_HEARTBEAT + b"\r\n"
              + dahua_part("CrossLineDetection", "Pulse", 0, {"Name": "围墙北侧", "Direction": "LeftToRight"})
              + dahua_part("VideoMotion", "Stop", 0) + dahua_part("NewFile", "Pulse", 0)
              + dahua_part("VideoBlind", "Start", 1))
    got = split(stream, "dahua", "multipart/x-mixed-replace; boundary=myboundary", seed)
    assert [(a.event, a.state, a.zone, a.channel) for a in got] == [
        ("motion", "start", "", 0), ("line_crossing", "start", "围墙北侧", 0), ("motion", "stop", "", 0),
        ("tamper", "start", "", 1)]


def test_json_isapi_parts_and_refusals():
    body = json.dumps({"eventType": "regionEntrance", "eventState": "active", "channelID": 4,
                       "dateTime": "2026-11-25T10:00:00+08:00", "DetectionRegionList": [{"regionID": 2}]}).encode()
    a = isapi_alarm("application/json", body)
    assert a is not None and (a.event, a.zone, a.channel) == ("region_entrance", "region-2", 4)
    assert a.ts == datetime(2026, 11, 25, 2, 0, tzinfo=UTC).timestamp()  # the camera's own time, zone kept
    assert isapi_alarm("image/jpeg", b"\xff\xd8\xff") is None
    with pytest.raises(AlarmFormatError, match="XML"):
        isapi_alarm("application/xml", b"<EventNotificationAlert><eventType>VMD")
    with pytest.raises(AlarmFormatError, match="expected <EventNotificationAlert>"):
        isapi_alarm("application/xml", b"<ResponseStatus/>")
    with pytest.raises(AlarmFormatError, match="Code="):
        dahua_alarms(b"garbage")
    with pytest.raises(AlarmFormatError, match="boundary"):
        MultipartReader.for_content_type("text/plain")


def onvif(topic: str, data: dict[str, str], source: dict[str, str] | None = None,
          operation: str = "Changed") -> CameraAlarm | None:
    """A notification as the emulator writes it (ONVIF's wire form), read back from its XML."""
    xml = notification(topic, data, source, operation, datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    ns = {"wsnt": "http://docs.oasis-open.org/wsn/b-2", "tt": "http://www.onvif.org/ver10/schema"}
    root = ET.fromstring(f'<r xmlns:wsnt="{ns["wsnt"]}" xmlns:tt="{ns["tt"]}">{xml}</r>')
    message = root.find("wsnt:NotificationMessage/wsnt:Message/tt:Message", ns)
    assert message is not None
    return onvif_alarm(root.findtext("wsnt:NotificationMessage/wsnt:Topic", "", ns), OnvifMessage.from_xml(message))


def test_onvif_topics_become_alarms():
    """ONVIF Analytics/Imaging topics and their Data items (the client is onvif-zeep-async; this is the
    reading of one notification): a state of true starts, false stops, `Initialized` false (a subscription's
    first report of an idle rule) is no news, `Deleted` stops, a line crossing is a pulse."""
    src = {"VideoSourceConfigurationToken": "1", "Rule": "MyFieldDetectorRule"}
    a = onvif("tns1:RuleEngine/FieldDetector/ObjectsInside", {"IsInside": "true"}, src)
    assert a is not None and (a.event, a.state, a.zone, a.channel) == ("intrusion", "start", "MyFieldDetectorRule", 1)
    assert a.ts == datetime(2026, 11, 25, 2, 0, tzinfo=UTC).timestamp()
    assert onvif("tns1:RuleEngine/FieldDetector/ObjectsInside", {"IsInside": "false"}, src).state == "stop"
    assert onvif("tns1:RuleEngine/CellMotionDetector/Motion", {"IsMotion": "false"}, operation="Initialized") is None
    assert onvif("tns1:RuleEngine/CellMotionDetector/Motion", {"IsMotion": "true"}, operation="Deleted").state == "stop"
    line = onvif("tns1:RuleEngine/LineDetector/Crossed", {"ObjectId": "7"}, {"Rule": "North"})
    assert (line.event, line.state, line.zone) == ("line_crossing", "start", "North")
    assert onvif("tns1:RuleEngine/TamperDetector/Tamper", {"IsTamper": "true"}).event == "tamper"
    assert onvif("tns1:VideoSource/ImageTooBlurry/ImagingService", {"State": "true"}).event == "defocus"
    assert onvif("tns1:VideoSource/SignalLoss", {"State": "true"}).event == "video_loss"
    assert onvif("tns1:VideoSource/MotionAlarm", {"State": "true"}).event == "motion"
    assert onvif("tns1:Device/Trigger/DigitalInput", {"LogicalState": "true"}) is None  # not a video event
    with pytest.raises(AlarmFormatError, match="IsMotion"):
        onvif("tns1:RuleEngine/CellMotionDetector/Motion", {"State": "true"})
    with pytest.raises(AlarmFormatError, match="expected <Message>"):
        OnvifMessage.from_xml(ET.fromstring("<Other/>"))


def test_repeats_start_once_and_stop_by_word_or_by_silence():
    s = AlarmStates(quiet=5.0)
    vmd = CameraAlarm("motion", "start", "", 1)
    assert s.seen(vmd, 0.0) == vmd
    assert s.seen(vmd, 1.0) is None and s.seen(vmd, 2.0) is None  # Hikvision repeats active every second
    assert s.expire(6.0) == []
    assert [a.state for a in s.expire(7.1)] == ["stop"]
    assert s.seen(CameraAlarm("motion", "stop", "", 1), 8.0) is None  # a stop of nothing is not news
    line = CameraAlarm("line_crossing", "start", "north", 0)
    s.seen(line, 10.0)
    assert s.seen(CameraAlarm("line_crossing", "stop", "north", 0), 11.0) is not None


RULES = """
rules:
  - id: cam-line
    match: {kind: camera}
    when: {event: [line_crossing, intrusion], clear_after: 1h}
    severity: major
    category: intrusion
  - id: cam-tamper
    match: {kind: camera}
    when: {event: tamper}
    severity: minor
    category: tamper
"""


@pytest.mark.parametrize("vendor", ["isapi", "dahua", "onvif"])
def test_each_vendor_alarm_becomes_an_alert_of_an_event_rule(tmp_path, broker, hub, vendor):
    emu: CameraAlarmEmulator | OnvifCameraEmulator
    emu = OnvifCameraEmulator().start() if vendor == "onvif" else CameraAlarmEmulator(heartbeat=0.5).start()
    cfg = CameraGatewayConfig.model_validate({
        "mqtt": {"host": broker.host, "port": broker.port}, "client_id": f"camgw-{vendor}",
        "reconnect": {"min": "0.2s", "max": "1s"},
        "cameras": [{"id": f"cam-{vendor}", "grid": "grid-05",
                     "alarms": [{"kind": vendor, "url": emu.url, "username": "admin", "password": "12345"}]},
                    {"id": f"cam-{vendor}-bad", "grid": "grid-05",  # a wrong password: refused, the rest go on
                     "alarms": [{"kind": vendor, "url": emu.url, "username": "admin", "password": "nope"}]}]})
    agent = Agent(agent_config(tmp_path, broker, hub.url, RULES))
    gw = CameraGateway(cfg)
    try:
        agent.start()
        assert agent.mqtt.wait_connected(10)
        gw.start()
        assert wait_until(lambda: (emu.connected() if isinstance(emu, OnvifCameraEmulator)
                                   else emu.connected(vendor)) == 1 and emu.refused >= 1, 15)
        if isinstance(emu, OnvifCameraEmulator):
            emu.send("tns1:RuleEngine/LineDetector/Crossed", {"ObjectId": "3"},
                     {"VideoSourceConfigurationToken": "1", "Rule": "Rule1"})
            ch1 = {"VideoSourceConfigurationToken": "1"}
            emu.send("tns1:RuleEngine/TamperDetector/Tamper", {"IsTamper": "true"}, ch1)
            emu.send("tns1:RuleEngine/TamperDetector/Tamper", {"IsTamper": "true"}, ch1)  # a repeat: no news
            emu.send("tns1:RuleEngine/TamperDetector/Tamper", {"IsTamper": "false"}, ch1)
        elif vendor == "isapi":
            emu.send(vendor, isapi_part("linedetection", "active", 1, region=2))
            emu.send(vendor, isapi_part("linedetection", "active", 1, region=2))  # repeat: no second alert
            emu.send(vendor, isapi_part("shelteralarm", "active", 1))
            emu.send(vendor, isapi_part("shelteralarm", "inactive", 1))
        else:
            emu.send(vendor, dahua_part("CrossLineDetection", "Start", 0, {"Name": "Rule1"}))
            emu.send(vendor, dahua_part("VideoBlind", "Start", 0))
            emu.send(vendor, dahua_part("VideoBlind", "Stop", 0))
        zone = "region-2" if vendor == "isapi" else "Rule1"

        def alerts(state: str) -> list[dict]:
            return [a for a in hub.unique.values() if a["state"] == state]
        assert wait_until(lambda: len(alerts("firing")) == 2 and len(alerts("resolved")) == 1, 15), hub.unique
        line = next(a for a in alerts("firing") if a["rule_id"] == "cam-line")
        assert (line["device_id"], line["grid_id"], line["labels"].get("zone")) == (f"cam-{vendor}", "grid-05", zone)
        assert next(a for a in alerts("resolved"))["rule_id"] == "cam-tamper"
        assert gw.cams[f"cam-{vendor}"].alarms[0].stats.alarms == 3
        assert gw.cams[f"cam-{vendor}-bad"].alarms[0].stats.alarms == 0
        assert agent.metrics.value("gridwatch_edge_rejected_total", reason="bad_field") == 0
    finally:
        gw.stop()
        agent.stop()
        emu.stop()


@pytest.mark.parametrize("rules_file", ["configs/rules.yaml", "configs/demo/rules.yaml"])
def test_shipped_rules_call_a_silent_camera_thermal_camera_or_fence_offline(rules_file):
    """A cut cable is an alert: the shipped rule files have silence rules for every kind that watches a place
    (frames stop, or the gateway says offline)."""
    import numpy as np

    from edge.message import Event
    from edge.rules.engine import Engine
    from edge.rules.loader import load_rules
    from edge.rules.ruleset import RuleSet
    from tests.rulekit import T0, Driver, status

    d = Driver(Engine(RuleSet(load_rules(Path(rules_file))), edge_id="edge-t"))
    gray = np.zeros((36, 64), np.uint8)
    d.send(Event(kind="camera", grid="grid-07", device="cam-07", ts=T0, received_at=T0, gray=gray))
    d.send(Event(kind="thermal", grid="grid-03", device="th-01", ts=T0, received_at=T0,
                 celsius=np.full((24, 32), 20.0, np.float32)))
    d.send(status(1.0, "offline", device="fence-01", grid="grid-03", kind="fence"))
    d.at(61.0)
    offline = {(a.device_id, a.category) for a in d.alerts if a.state == "firing"}
    assert {("cam-07", "device_offline"), ("th-01", "device_offline"), ("fence-01", "device_offline")} <= offline


def test_the_shipped_rules_turn_every_standard_camera_alarm_into_a_case_with_no_rule_written():
    """Issue 41: a new GB/T 28181 platform's alarms (and ONVIF's, ISAPI's, Dahua's, mapped to the same camera
    events) open cases with the shipped rules alone: intrusion, line crossing, loitering, video loss and tamper
    each fire their own rule, in Chinese, and end when the camera says the alarm stopped."""
    from edge.gb28181.alarms import EVENTS
    from edge.message import Event
    from edge.rules.engine import Engine
    from edge.rules.loader import load_rules
    from edge.rules.ruleset import RuleSet
    from tests.rulekit import T0, Driver

    expected = {"intrusion": ("camera-intrusion", "intrusion", "区域入侵"),
                "line_crossing": ("camera-line-crossing", "intrusion", "越线"),
                "loitering": ("camera-loitering", "loitering", "徘徊"),
                "video_loss": ("camera-video-loss", "device_fault", "视频丢失"),
                "tamper": ("camera-tamper-alarm", "tamper", "遮挡")}
    assert {e for e in EVENTS.values() if e != "motion"} == set(expected)  # every standard alarm but motion
    d = Driver(Engine(RuleSet(load_rules(Path("configs/rules.yaml"))), edge_id="edge-t"))
    for i, name in enumerate(expected):
        d.send(Event(kind="camera", grid="grid-01", device=f"44030500001320000{i:03d}", ts=T0 + i,
                     received_at=T0 + i, event=name))
    firing = {a.device_id: a for a in d.alerts if a.state == "firing"}
    for i, (name, (rule, category, words)) in enumerate(expected.items()):
        a = firing[f"44030500001320000{i:03d}"]
        assert (a.rule_id, a.category) == (rule, category) and words in a.message, (name, a)
    for i in range(len(expected)):  # the camera says it is over
        d.send(Event(kind="camera", grid="grid-01", device=f"44030500001320000{i:03d}", ts=T0 + 10 + i,
                     received_at=T0 + 10 + i, event="restore"))
    resolved = {a.device_id for a in d.alerts if a.state == "resolved"}
    assert resolved == set(firing), resolved


def test_a_cameras_own_alarm_carries_its_newest_frame_as_the_snapshot(tmp_path):
    """Issue 41: an RTSP/ONVIF camera's alarm (ISAPI, Dahua, ONVIF events) opens its case with a picture: the
    camera's newest frame (real footage, OpenCV's vtest.avi), as it was. A camera with no frame, or whose
    newest frame is older than a minute, gives none (an old picture is not what it saw)."""
    import base64
    import json

    import cv2
    import numpy as np

    from simulators import footage
    from tests.rulekit import T0
    from tests.videokit import firing, frame_line, iso, run_capture

    frame = next(iter(footage.frames(footage.clip(), 1)))
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok

    def event_line(device: str, t: float) -> dict:
        body = {"ts": int((T0 + t) * 1000), "seq": int(t), "event": "intrusion", "state": "start"}
        return {"topic": f"gw/grid-01/camera/{device}/event", "received_at": iso(T0 + t),
                "payload_b64": base64.b64encode(json.dumps(body).encode()).decode()}

    rules = Path("configs/rules.yaml").read_text(encoding="utf-8")
    lines = [frame_line("camera", "cam-fresh", 0.0, jpeg.tobytes()), event_line("cam-fresh", 5.0),
             frame_line("camera", "cam-old", 0.0, jpeg.tobytes()), event_line("cam-old", 120.0),
             event_line("cam-blind", 5.0)]
    res = run_capture(tmp_path, rules, sorted(lines, key=lambda x: x["received_at"]))
    got = {a.device_id: a for a in firing(res, "camera-intrusion")}
    assert set(got) == {"cam-fresh", "cam-old", "cam-blind"}
    assert got["cam-old"].evidence.snapshot_jpeg_b64 is None and got["cam-blind"].evidence.snapshot_jpeg_b64 is None
    shot = cv2.imdecode(np.frombuffer(base64.b64decode(got["cam-fresh"].evidence.snapshot_jpeg_b64), np.uint8),
                        cv2.IMREAD_COLOR)
    assert shot is not None and shot.shape[:2] == frame.shape[:2]
    top = slice(40, None)  # (the caption is written across the top)
    assert float(np.abs(shot[top].astype(int) - frame[top].astype(int)).mean()) < 8  # the camera's own picture
