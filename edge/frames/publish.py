"""A frame on the wire as the frame contract has it (docs/DESIGN.md): JPEG, its time and sequence number, as MQTT
v5 user properties or, on 3.1.1, a JSON envelope. Both gateways (RTSP/ONVIF cameras, GB/T 28181 platforms)
publish through it."""

from __future__ import annotations

import base64
import json
from typing import Any

import cv2
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def publish_frame(client: Any, v5: bool, topic: str, image: Any, quality: int, ts: float, seq: int) -> bool:
    """One BGR image as the contract's frame: JPEG, `ts` (ms) and `seq` as MQTT v5 user properties, or the JSON
    envelope on 3.1.1; QoS 0. False when the image would not encode."""
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return False
    ts_ms = int(ts * 1000)
    if v5:
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "image/jpeg"
        props.UserProperty = [("ts", str(ts_ms)), ("seq", str(seq))]
        client.publish(topic, jpeg.tobytes(), qos=0, properties=props)
    else:
        body = {"ts": ts_ms, "seq": seq, "jpeg_b64": base64.b64encode(jpeg.tobytes()).decode()}
        client.publish(topic, json.dumps(body), qos=0)
    return True
