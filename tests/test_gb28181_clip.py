"""An alarm's recorded clip (issue 41): a platform's intrusion alarm opens a case by the shipped rules; moments
later the gateway asks the platform what it recorded of the channel around the alarm (`RecordInfo`, GB/T
28181-2016 §9.7), downloads that span (`s=Download`, `t=`, `a=downloadspeed:4`, §9.9), is told the download
ended (`MediaStatus` 121), hangs up, and the case carries an MP4 of the ten seconds before the alarm and the
five after: real footage (OpenCV's vtest.avi as H.264, the emulator's recording) remuxed, not re-encoded."""

from __future__ import annotations

import io
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edge.agent import Agent
from gridwatch.core.gb28181 import manscdp
from simulators.gb28181 import GbDevice, make_channels
from tests.agentkit import agent_config, wait_until
from tests.footagekit import h264
from tests.hubkit import EDGE, Hub
from tests.test_gb28181 import DOMAIN, PLATFORM, SERVER, SLA, gateway
from tests.test_gb28181_look import first_frame, unlike


@pytest.mark.e2e  # make e2e-test: a hub, an agent on the shipped rules, the gateway and a platform recording
def test_an_alarm_case_gets_the_channels_recording_from_before_the_alarm_as_mp4(broker, tmp_path):
    street = h264("vtest-768-gop10", seconds=70, gop=10)
    hub = Hub(tmp_path / "hub", SLA).start()
    channels = make_channels(4)
    c = channels[1]  # civil code 440305002: grid-02
    gw = gateway(broker, "gb-clip", hub=hub)
    agent = Agent(agent_config(tmp_path / "agent", broker, hub.url, Path("configs/rules.yaml").read_text(),
                               hub={"key": EDGE}, mqtt={"topic_root": "gb-clip", "protocol": "v311"}))
    plat = GbDevice(("127.0.0.1", gw.port), SERVER, DOMAIN, PLATFORM, "test-only-pw-1", channels=channels,
                    footage=street).start()
    try:
        agent.start()
        assert agent.mqtt.wait_connected(10)
        assert plat.register() == 200
        assert wait_until(lambda: any(d["id"] == c.id for d in hub.get("/api/v1/devices?q=" + c.id)["devices"]), 15)
        alarm_at = time.time()
        assert plat.alarm(c.id, 5, 6, "区域入侵") == 200

        def case() -> dict | None:
            got = next((x for x in hub.get("/api/v1/cases")["cases"] if x["device"] == c.id), None)
            return hub.get(f"/api/v1/cases/{got['id']}") if got else None
        assert wait_until(lambda: (case() or {}).get("clips"), 40), (case() or {}).get("timeline")
        took = time.time() - alarm_at
        got = case()
        assert got is not None
        (clip,) = got["clips"]
        assert "报警录像" in clip["note"] and "区域入侵" in clip["note"]

        # what was asked of the platform: the span around the alarm, then its download at four times
        ((queried, q_start, q_end),) = plat.record_queries
        assert queried == c.id
        assert abs(manscdp.read_local_time(q_start) - (alarm_at - 10)) <= 1.5
        assert abs(manscdp.read_local_time(q_end) - (alarm_at + 5)) <= 1.5
        ((loaded, session, t0, t1, speed),) = plat.downloads
        assert (loaded, session, speed, t1 - t0) == (c.id, "Download", 4, 15), plat.downloads
        download = next(m for m in plat.got if m.method == "INVITE" and b"s=Download" in m.body)
        assert f"u={c.id}:0".encode() in download.body and b"\r\ny=1" in download.body  # a history SSRC (附录F)
        assert plat.media_ended == [c.id]
        assert wait_until(lambda: any(m.method == "BYE" and m.call_id == download.call_id for m in plat.got), 10)

        # the clip: an MP4 of the recording, 15 s of the footage, its frames the footage's
        r = hub.call("GET", clip["url"].removeprefix(hub.url))
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4" and r.content[4:8] == b"ftyp"
        with av.open(io.BytesIO(r.content)) as mp4:
            v = mp4.streams.video[0]
            assert v.codec_context.name == "h264"
            frames = [f.to_ndarray(format="bgr24") for f in mp4.decode(v)]
        assert 140 <= len(frames) <= 155, len(frames)  # 10 fps for 15 s
        assert unlike(frames[0], first_frame(street)) < 8  # the recording's first frame, not something else
        assert float(np.std(cv2.cvtColor(frames[-1], cv2.COLOR_BGR2GRAY))) > 20  # a picture to the end
        print(f"\nalarm -> recorded clip on the case {took:.1f} s ({len(r.content) // 1024} KiB, {len(frames)} frames)")
    finally:
        agent.stop()
        plat.close()
        gw.stop()
        hub.stop()
