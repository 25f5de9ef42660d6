"""Camera-native alarms in the vendors' documented wire formats, parsed without I/O.

- **Hikvision ISAPI** `GET /ISAPI/Event/notification/alertStream` (HTTP digest auth): a never-ending
  `multipart/mixed` body; each part an `EventNotificationAlert` (XML, `application/xml`; newer firmware also
  JSON, `application/json`) with `channelID`, `dateTime`, `eventType` (VMD, linedetection,
  fielddetection, regionEntrance, regionExiting, loitering, videoloss, shelteralarm, defocus,
  scenechangedetection…), `eventState` (active / inactive) and, for smart events, the rule's region
  (`DetectionRegionList/DetectionRegionEntry/regionID`). Source: Hikvision "ISAPI Developer Guide —
  Event" (alertStream, EventNotificationAlert schema `http://www.hikvision.com/ver20/XMLSchema`); event
  names as used by pyHik (Home Assistant's Hikvision library), `pyhik/constants.py` SENSOR_MAP.
  The camera repeats `active` every second or so while the event lasts and often sends no `inactive`;
  `videoloss inactive` is also its heartbeat. `AlarmStates` turns this into start and stop edges.
- **Dahua** `GET /cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=5` (digest auth):
  `multipart/x-mixed-replace; boundary=myboundary`, each part `text/plain` with
  `Code=VideoMotion;action=Start;index=0` and, for smart events, `;data={…"Name":"Rule1"…}`; a part that
  reads `Heartbeat` every `heartbeat` seconds. Source: Dahua "HTTP API for IP Camera and Speed Dome" v2.x,
  §Event Management (eventManager attach); codes VideoMotion, CrossLineDetection, CrossRegionDetection,
  VideoLoss, VideoBlind, SceneChange, StayDetection.

- **ONVIF events** (Profile S/T, PullPoint): `CreatePullPointSubscription` then `PullMessages` on the
  subscription, each `wsnt:NotificationMessage` a topic (`tns1:RuleEngine/CellMotionDetector/Motion`, …) and
  a `tt:Message` with `PropertyOperation` (Initialized / Changed / Deleted), `UtcTime`, `Source` and `Data`
  `SimpleItem`s. Source: ONVIF "Event Handling Test Specification" / "Core Specification" §9 (Event
  handling, PullPoint), the "Analytics Service Specification" (CellMotionDetector `IsMotion`, LineDetector
  `Crossed`, FieldDetector `ObjectsInside` `IsInside`, TamperDetector `IsTamper`) and the "Imaging Service
  Specification" (VideoSource `ImageTooBlurry`, `GlobalSceneChange`, `SignalLoss`, `MotionAlarm` `State`);
  topic and item names as Home Assistant's ONVIF integration reads them (`onvif/parsers.py`). The client
  is onvif-zeep-async (edge/camera_gateway/onvif_events.py); `onvif_alarm` reads one message.

`MultipartReader` splits either stream into parts as bytes arrive (Content-Length when given, else the
next boundary).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from gridwatch.core.kinds import CameraEventName

AlarmState = Literal["start", "stop"]

ISAPI_EVENTS: dict[str, CameraEventName] = {
    "vmd": "motion", "linedetection": "line_crossing", "fielddetection": "intrusion",
    "regionentrance": "region_entrance", "regionexiting": "region_exiting", "loitering": "loitering",
    "videoloss": "video_loss", "shelteralarm": "tamper", "tamperdetection": "tamper", "defocus": "defocus",
    "scenechangedetection": "scene_change"}
DAHUA_EVENTS: dict[str, CameraEventName] = {
    "VideoMotion": "motion", "CrossLineDetection": "line_crossing", "CrossRegionDetection": "intrusion",
    "StayDetection": "loitering", "VideoLoss": "video_loss", "VideoBlind": "tamper", "SceneChange": "scene_change",
    "VideoAbnormalDetection": "tamper"}


@dataclass(frozen=True, slots=True)
class CameraAlarm:
    event: CameraEventName
    state: AlarmState
    zone: str  # the camera's region, line or rule name ('' when it gave none)
    channel: int | None = None
    ts: float | None = None  # the camera's own time, when it gave one
    code: str = ""  # the vendor's event code, for logs and metrics


class AlarmFormatError(ValueError):
    """A part that is not what the vendor's document says (counted and logged; the stream goes on)."""


# ---- multipart streams ----

@dataclass
class MultipartReader:
    boundary: bytes
    max_part: int = 1 << 20
    buf: bytearray = field(default_factory=bytearray)

    @classmethod
    def for_content_type(cls, content_type: str) -> MultipartReader:
        m = re.search(r'boundary="?([^";,\s]+)"?', content_type, re.I)
        if not m:
            raise AlarmFormatError(f"no boundary in Content-Type {content_type!r}")
        b = m.group(1).encode()
        return cls(b[2:] if b.startswith(b"--") else b)

    def feed(self, data: bytes) -> list[tuple[dict[str, str], bytes]]:
        """Parts completed by this chunk, each as (lower-cased headers, body)."""
        self.buf += data
        parts = []
        while True:
            part = self._next()
            if part is None:
                break
            parts.append(part)
        if len(self.buf) > self.max_part * 2:
            del self.buf[: len(self.buf) - self.max_part]  # a part that never ends is dropped, not hoarded
        return parts

    def _next(self) -> tuple[dict[str, str], bytes] | None:
        marker = b"--" + self.boundary
        start = self.buf.find(marker)
        if start < 0:
            return None
        head_end = self.buf.find(b"\r\n\r\n", start)
        sep = 4
        if head_end < 0:
            head_end = self.buf.find(b"\n\n", start)
            sep = 2
            if head_end < 0:
                return None
        lines = bytes(self.buf[start + len(marker): head_end]).decode("latin-1").splitlines()
        headers = {}
        for line in lines:
            k, colon, v = line.partition(":")
            if colon:
                headers[k.strip().lower()] = v.strip()
        body_start = head_end + sep
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit():
            n = int(length)
            if n > self.max_part:
                raise AlarmFormatError(f"part of {n} bytes, limit {self.max_part}")
            if len(self.buf) < body_start + n:
                return None
            body = bytes(self.buf[body_start: body_start + n])
            del self.buf[: body_start + n]
        else:
            nxt = self.buf.find(marker, body_start)
            if nxt < 0:
                return None
            body = bytes(self.buf[body_start:nxt]).rstrip(b"\r\n")
            del self.buf[:nxt]
        return headers, body


# ---- Hikvision ISAPI ----

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def isapi_alarm(content_type: str, body: bytes) -> CameraAlarm | None:
    """One alertStream part as an alarm; None for an event type gridwatch does not forward or a picture."""
    ctype = content_type.lower()
    if "json" in ctype:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise AlarmFormatError(f"ISAPI JSON part: {exc}") from None
        if not isinstance(data, dict):
            raise AlarmFormatError("ISAPI JSON part is not an object")
        return _isapi(str(data.get("eventType", "")), str(data.get("eventState", "active")),
                      data.get("channelID"), data.get("dateTime"), _json_region(data))
    if "xml" not in ctype and not body.lstrip().startswith(b"<"):
        return None  # pictures (image/jpeg) that some events attach
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise AlarmFormatError(f"ISAPI XML part: {exc}") from None
    if _local(root.tag) != "EventNotificationAlert":
        raise AlarmFormatError(f"ISAPI part is <{_local(root.tag)}>, expected <EventNotificationAlert>")
    fields: dict[str, str] = {}
    region = ""
    for el in root.iter():
        name = _local(el.tag)
        if name in ("regionID", "RegionID") and not region and (el.text or "").strip():
            region = f"region-{el.text.strip()}"  # type: ignore[union-attr]
        elif name not in fields and el.text and el.text.strip():
            fields[name] = el.text.strip()
    channel = fields.get("channelID") or fields.get("dynChannelID")
    return _isapi(fields.get("eventType", ""), fields.get("eventState", "active"), channel, fields.get("dateTime"),
                  region)


def _json_region(data: dict[str, object]) -> str:
    regions = data.get("DetectionRegionList")
    if isinstance(regions, list) and regions and isinstance(regions[0], dict):
        rid = regions[0].get("regionID") or regions[0].get("RegionID")
        if rid is not None:
            return f"region-{rid}"
    return ""


def _isapi(event_type: str, state: str, channel: object, when: object, region: str) -> CameraAlarm | None:
    if not event_type:
        raise AlarmFormatError("ISAPI part has no eventType")
    event = ISAPI_EVENTS.get(event_type.lower())
    if event is None:
        return None
    ch = int(channel) if isinstance(channel, (int, str)) and str(channel).isdigit() else None
    return CameraAlarm(event, "stop" if state.lower() == "inactive" else "start", region, ch,
                       _parse_time(when if isinstance(when, str) else None), event_type)


# ---- Dahua eventManager ----

_DAHUA = re.compile(r"Code=(?P<code>[A-Za-z0-9_]+);action=(?P<action>[A-Za-z]+);index=(?P<index>\d+)"
                    r"(?:;data=(?P<data>.*))?", re.S)


def dahua_alarms(body: bytes) -> list[CameraAlarm]:
    """One eventManager part (it may hold several `Code=` lines) as alarms; `Heartbeat` gives none."""
    text = body.decode("utf-8", "replace").strip()
    if not text or text == "Heartbeat":
        return []
    out = []
    for chunk in re.split(r"\r?\n(?=Code=)", text):
        m = _DAHUA.match(chunk.strip())
        if m is None:
            raise AlarmFormatError(f"Dahua part is not Code=…;action=…;index=…: {chunk[:80]!r}")
        event = DAHUA_EVENTS.get(m["code"])
        action = m["action"].lower()
        if event is None or action not in ("start", "stop", "pulse"):
            continue
        zone = ""
        if m["data"]:
            try:
                data = json.loads(m["data"])
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("Name"), str):
                zone = data["Name"]
        index = int(m["index"])
        if action == "pulse":  # a one-off event (a line crossed): start now; the stop comes from AlarmStates
            out.append(CameraAlarm(event, "start", zone, index, None, m["code"]))
        else:
            out.append(CameraAlarm(event, "start" if action == "start" else "stop", zone, index, None, m["code"]))
    return out


# ---- ONVIF events ----

# topic (after its prefix, lower case) -> event, and the Data item whose truth is the state (None: a pulse)
ONVIF_TOPICS: dict[str, tuple[CameraEventName, str | None]] = {
    "ruleengine/cellmotiondetector/motion": ("motion", "IsMotion"),
    "videosource/motionalarm": ("motion", "State"),
    "ruleengine/linedetector/crossed": ("line_crossing", None),
    "ruleengine/fielddetector/objectsinside": ("intrusion", "IsInside"),
    "ruleengine/tamperdetector/tamper": ("tamper", "IsTamper"),
    "videosource/imagetooblurry/analyticsservice": ("defocus", "State"),
    "videosource/imagetooblurry/imagingservice": ("defocus", "State"),
    "videosource/imagetooblurry/recordingservice": ("defocus", "State"),
    "videosource/globalscenechange/analyticsservice": ("scene_change", "State"),
    "videosource/globalscenechange/imagingservice": ("scene_change", "State"),
    "videosource/globalscenechange/recordingservice": ("scene_change", "State"),
    "videosource/signalloss": ("video_loss", "State"),
}
_TRUE = {"true", "1", "on", "active"}


def _topic_key(topic: str) -> str:
    """`tns1:RuleEngine/CellMotionDetector/Motion` -> `ruleengine/cellmotiondetector/motion` (prefixes of
    each step dropped: cameras use their own prefix names)."""
    return "/".join(step.rsplit(":", 1)[-1] for step in topic.strip().split("/")).lower()


@dataclass(frozen=True, slots=True)
class OnvifMessage:
    """A `tt:Message` as read: its `PropertyOperation`, `UtcTime` and `Source` / `Data` simple items."""

    operation: str
    utc_time: str | None
    source: dict[str, str]
    data: dict[str, str]

    @classmethod
    def from_xml(cls, message: ET.Element) -> OnvifMessage:
        if _local(message.tag) != "Message":
            raise AlarmFormatError(f"ONVIF notification holds <{_local(message.tag)}>, expected <Message>")
        parts: dict[str, dict[str, str]] = {"Source": {}, "Data": {}}
        for el in message:
            if _local(el.tag) in parts:
                for item in el:
                    if _local(item.tag) == "SimpleItem" and item.get("Name") is not None:
                        parts[_local(el.tag)][str(item.get("Name"))] = str(item.get("Value", ""))
        return cls(str(message.get("PropertyOperation", "Changed")), message.get("UtcTime"), parts["Source"],
                   parts["Data"])

    @classmethod
    def from_zeep(cls, message: object) -> OnvifMessage:
        """The object zeep makes of a `tt:Message` (the schema is known to it, so it is typed, not XML)."""
        def items(part: object) -> dict[str, str]:
            out: dict[str, str] = {}
            for item in getattr(part, "SimpleItem", None) or []:
                name, value = getattr(item, "Name", None), getattr(item, "Value", None)
                if name is not None:
                    out[str(name)] = "" if value is None else str(value)
            return out
        if not hasattr(message, "Data"):
            raise AlarmFormatError(f"ONVIF notification holds {type(message).__name__}, expected a tt:Message")
        when: Any = getattr(message, "UtcTime", None)
        stamp = when.isoformat() if isinstance(when, datetime) else (str(when) if when else None)
        return cls(str(getattr(message, "PropertyOperation", None) or "Changed"), stamp,
                   items(getattr(message, "Source", None)), items(getattr(message, "Data", None)))


def onvif_alarm(topic: str, message: OnvifMessage) -> CameraAlarm | None:
    """One PullMessages notification as an alarm; None for a topic gridwatch does not forward, or the
    `Initialized` state of an idle rule (the camera reports every property once when a subscription
    starts)."""
    known = ONVIF_TOPICS.get(_topic_key(topic))
    if known is None:
        return None
    event, item = known
    if item is None:
        state: AlarmState = "start"
    else:
        if item not in message.data:
            raise AlarmFormatError(f"ONVIF {topic!r} has no Data item {item!r} (has {sorted(message.data)})")
        state = "start" if message.data[item].strip().lower() in _TRUE else "stop"
    if message.operation == "Deleted":
        state = "stop"
    if state == "stop" and message.operation == "Initialized":
        return None
    zone = message.source.get("Rule", "")
    token = (message.source.get("VideoSourceConfigurationToken") or message.source.get("VideoSourceToken")
             or message.source.get("Source"))
    channel = int(token) if token is not None and token.isdigit() else None
    return CameraAlarm(event, state, zone, channel, _parse_time(message.utc_time), topic.strip())


# ---- edges from repeats ----

@dataclass
class AlarmStates:
    """Start and stop edges from a vendor's repeated states (pure; times are given).

    A `start` is forwarded once per (event, zone); a repeat only refreshes it. A `stop` is forwarded when
    the camera says so, or when no repeat came for `quiet` seconds (Hikvision's VMD and one-off line
    crossings send no stop). A stop of an event that never started is not news."""

    quiet: float = 5.0
    active: dict[tuple[str, str, int | None], tuple[float, CameraAlarm]] = field(default_factory=dict)

    def seen(self, alarm: CameraAlarm, now: float) -> CameraAlarm | None:
        key = (alarm.event, alarm.zone, alarm.channel)
        if alarm.state == "start":
            new = key not in self.active
            self.active[key] = (now, alarm)
            return alarm if new else None
        return alarm if self.active.pop(key, None) is not None else None

    def expire(self, now: float) -> list[CameraAlarm]:
        gone = [k for k, (t, _) in self.active.items() if now - t > self.quiet]
        out = []
        for k in gone:
            _, a = self.active.pop(k)
            out.append(CameraAlarm(a.event, "stop", a.zone, a.channel, None, a.code))
        return out
