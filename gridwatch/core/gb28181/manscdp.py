"""MANSCDP, the XML of GB/T 28181's commands (`Application/MANSCDP+xml`, GB/T 28181-2016 Annex A), read and
written without I/O.

Read with defusedxml (no DTDs, no entities, no external references: a billion-laughs or XXE body is refused
by name), after the bytes are decoded by the encoding the body declares: devices declare `GB2312` (most),
`GBK`, `GB18030` or `UTF-8` (expat itself reads no multi-byte Chinese encoding). GB2312 and GBK are read as
GB18030, their superset, since cameras that say GB2312 send GBK names; bytes that are valid UTF-8 are read
as UTF-8 whatever the declaration says (a common firmware slip; GB-encoded Chinese is practically never valid
UTF-8), and bytes that are neither are refused. Depth and item counts are
capped before anything is kept.

The commands gridwatch reads, with their clauses:
- `Notify/Keepalive` (§9.6.1, A.2.5): the device's heartbeat, `Status` OK;
- `Response/Catalog` (§9.5.2, A.2.6.4): `SumNum` and a `DeviceList Num="n"` page of `Item`s with DeviceID,
  Name, Manufacturer, Model, CivilCode, Address, Parental, ParentID, Status (ON/OFF), Longitude, Latitude;
- `Notify/Catalog` (§9.5.4 of 2016 / §9.6.3 of 2022, A.2.5): the same items with `Event` ADD, DEL, UPDATE,
  ON, OFF, VLOST, DEFECT;
- `Notify/Alarm` (§9.4, A.2.5): AlarmPriority 1–4, AlarmMethod 1–7, AlarmTime, AlarmDescription, Longitude,
  Latitude, `Info/AlarmType` (A.2.3.1.6's table; see `gb28181.alarms`).
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Literal

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

MAX_DEPTH = 12
MAX_ITEMS = 1_000
_DECL = re.compile(rb"^\s*<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9_-]{1,20})[\"'][^>]{0,200}\?>")
_CODECS = {"gb2312": "gb18030", "gbk": "gb18030", "gb18030": "gb18030", "utf-8": "utf-8", "utf8": "utf-8"}
Root = Literal["Query", "Response", "Notify", "Control"]


class XmlError(ValueError):
    """A body gridwatch does not take; `reason` is counted (xml_forbidden, xml_too_deep, bad_encoding…)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Body:
    root: str  # Query, Response, Notify, Control
    cmd: str  # CmdType
    sn: int
    device_id: str
    xml: ET.Element
    charset: str  # what the body declared, normalised: gb18030 or utf-8

    def text(self, path: str, default: str = "") -> str:
        el = self.xml.find(path)
        return (el.text or "").strip() if el is not None and el.text is not None else default


@dataclass(frozen=True, slots=True)
class CatalogItem:
    device_id: str
    name: str = ""
    manufacturer: str = ""
    model: str = ""
    civil_code: str = ""
    address: str = ""
    parent_id: str = ""
    status: str = ""  # ON / OFF ('' when not said)
    longitude: float | None = None
    latitude: float | None = None
    event: str = ""  # in a catalog notification: ADD, DEL, UPDATE, ON, OFF, VLOST, DEFECT


@dataclass(frozen=True, slots=True)
class Catalog:
    device_id: str
    sn: int
    sum_num: int
    items: list[CatalogItem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Alarm:
    device_id: str
    sn: int
    priority: int
    method: int
    alarm_type: int | None
    time: str
    description: str
    longitude: float | None
    latitude: float | None


def decode(data: bytes) -> tuple[str, str]:
    """The body as text and the codec it was read with."""
    m = _DECL.match(data)
    declared = m.group(1).decode().lower() if m else "utf-8"
    codec = _CODECS.get(declared)
    if codec is None:
        raise XmlError("bad_encoding", f"declared encoding {declared!r} is not one GB/T 28181 uses")
    # UTF-8 first: Chinese text in GB2312/GBK is almost never valid UTF-8, while UTF-8 bytes are valid GB18030
    # (as mojibake), so a body that declares GB2312 but is UTF-8 is only caught this way round
    for c in dict.fromkeys(("utf-8", codec)):
        try:
            text = data.decode(c)
        except UnicodeDecodeError:
            continue
        return (text[m.end():] if m else text), c
    raise XmlError("bad_encoding", f"the body is neither {declared} nor UTF-8")


_KEEPALIVE = re.compile(
    rb'\s*(?:<\?xml version="1\.0"(?: encoding="(?i:gb2312|gbk|gb18030|utf-8)")?\s*\?>)?\s*<Notify>\s*'
    rb"<CmdType>Keepalive</CmdType>\s*<SN>([0-9]{1,10})</SN>\s*<DeviceID>([0-9A-Za-z]{1,32})</DeviceID>\s*"
    rb"<Status>(?:OK|ERROR)</Status>\s*</Notify>\s*")


def keepalive(data: bytes) -> tuple[int, str] | None:
    """A keepalive in its plain form (§9.6.2, A.2.5.2: CmdType, SN, DeviceID, Status) read by one anchored
    pattern instead of the XML parser: (SN, DeviceID). None for anything else, which `parse` reads (a keepalive
    with an `Info` list of faulty channels among them). Ten thousand devices send one each a minute."""
    m = _KEEPALIVE.fullmatch(data)
    return (int(m.group(1)), m.group(2).decode()) if m else None


def parse(data: bytes) -> Body:
    text, charset = decode(data)
    try:
        root = SafeET.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise XmlError("xml_forbidden", type(exc).__name__) from None
    except ET.ParseError as exc:
        raise XmlError("xml_malformed", str(exc)) from None
    depth = _depth(root)
    if depth > MAX_DEPTH:
        raise XmlError("xml_too_deep", f"{depth} levels, limit {MAX_DEPTH}")
    if root.tag not in ("Query", "Response", "Notify", "Control"):
        raise XmlError("xml_unknown", f"root element <{root.tag[:40]}>")
    cmd = (root.findtext("CmdType") or "").strip()
    sn_text = (root.findtext("SN") or "").strip()
    device_id = (root.findtext("DeviceID") or "").strip()
    if not cmd or not re.fullmatch(r"[A-Za-z]{1,32}", cmd):
        raise XmlError("xml_unknown", "no CmdType")
    if not re.fullmatch(r"[0-9]{1,10}", sn_text or "0"):
        raise XmlError("xml_malformed", f"SN {sn_text[:20]!r}")
    if not re.fullmatch(r"[0-9A-Za-z]{1,32}", device_id):
        raise XmlError("xml_malformed", f"DeviceID {device_id[:40]!r}")
    return Body(root.tag, cmd, int(sn_text or 0), device_id, root, charset)


def _depth(root: ET.Element) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        el, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, d + 1) for child in el)
    return deepest


def _float(text: str | None) -> float | None:
    try:
        v = float((text or "").strip())
    except ValueError:
        return None
    return v if v == v and abs(v) <= 180 and v != 0.0 else None  # 0 is "not set" on every device seen


def catalog(b: Body) -> Catalog:
    """A catalog page (Response) or a catalog change (Notify)."""
    try:
        sum_num = int(b.text("SumNum", "0") or 0)
    except ValueError:
        raise XmlError("xml_malformed", "SumNum is not a number") from None
    items: list[CatalogItem] = []
    for it in b.xml.iterfind("DeviceList/Item"):
        if len(items) >= MAX_ITEMS:
            raise XmlError("xml_too_large", f"more than {MAX_ITEMS} items in one message")
        did = (it.findtext("DeviceID") or "").strip()
        if not re.fullmatch(r"[0-9A-Za-z]{1,32}", did):
            raise XmlError("xml_malformed", f"catalog item DeviceID {did[:40]!r}")

        def t(tag: str, el: ET.Element = it) -> str:
            return (el.findtext(tag) or "").strip()
        items.append(CatalogItem(device_id=did, name=t("Name")[:200], manufacturer=t("Manufacturer")[:64],
                                 model=t("Model")[:64], civil_code=t("CivilCode")[:20], address=t("Address")[:500],
                                 parent_id=t("ParentID")[:32], status=t("Status").upper()[:8],
                                 longitude=_float(it.findtext("Longitude")), latitude=_float(it.findtext("Latitude")),
                                 event=t("Event").upper()[:8]))
    return Catalog(b.device_id, b.sn, sum_num, items)


def alarm(b: Body) -> Alarm:
    def num(tag: str) -> int | None:
        v = b.text(tag)
        return int(v) if re.fullmatch(r"[0-9]{1,3}", v) else None
    priority, method = num("AlarmPriority"), num("AlarmMethod")
    if method is None:
        raise XmlError("xml_malformed", "an alarm without AlarmMethod")
    return Alarm(b.device_id, b.sn, priority or 4, method, num("Info/AlarmType") if b.xml.find("Info") is not None
                 else num("AlarmType"), b.text("AlarmTime"), b.text("AlarmDescription")[:500],
                 _float(b.xml.findtext("Longitude")), _float(b.xml.findtext("Latitude")))


# ---- writing ----

def write(root: str, cmd: str, sn: int, device_id: str, fields: list[tuple[str, str]] | None = None,
          extra: list[ET.Element] | None = None, charset: str = "GB2312") -> bytes:
    """A MANSCDP body: `<?xml version="1.0" encoding="GB2312"?>` (what devices expect) and the elements."""
    el = ET.Element(root)
    for tag, value in [("CmdType", cmd), ("SN", str(sn)), ("DeviceID", device_id), *(fields or [])]:
        ET.SubElement(el, tag).text = value
    for child in extra or []:
        el.append(child)
    text = ET.tostring(el, encoding="unicode")
    codec = _CODECS.get(charset.lower(), "utf-8")
    return f'<?xml version="1.0" encoding="{charset}"?>\r\n{text}\r\n'.encode(codec)


def query_catalog(sn: int, device_id: str) -> bytes:
    return write("Query", "Catalog", sn, device_id)


def guard_control(sn: int, device_id: str, armed: bool) -> bytes:
    """报警布防/撤防 (GB/T 28181-2016 A.2.3.1.3): `<Control>` DeviceControl with `<GuardCmd>SetGuard</GuardCmd>`
    or `ResetGuard`; the device answers a `<Response>` DeviceControl with `<Result>OK</Result>` (A.2.6.2)."""
    return write("Control", "DeviceControl", sn, device_id, [("GuardCmd", "SetGuard" if armed else "ResetGuard")])


PRESET_SET, PRESET_CALL, PRESET_DELETE = 0x81, 0x82, 0x83
"""PTZ instruction codes of the preset commands (GB/T 28181-2016 A.3.5, 预置位指令: byte 4)."""


def ptz_cmd(code: int, data1: int = 0, data2: int = 0, data3: int = 0, address: int = 1) -> str:
    """A PTZ command (GB/T 28181-2016 A.3.1) as the 16 hex digits of `<PTZCmd>`: byte 1 A5; byte 2 the version
    (0) in its high nibble and the check of bytes 1-2 in its low one ((0xA + 0x5 + 0) % 16 = 0xF); byte 3 the
    address's low 8 bits; byte 4 the instruction; bytes 5 and 6 data 1 and 2; byte 7 data 3 in its high
    nibble and the address's high 4 bits in its low one; byte 8 the sum of bytes 1-7 modulo 256."""
    if not (0 <= code <= 0xFF and 0 <= data1 <= 0xFF and 0 <= data2 <= 0xFF and 0 <= data3 <= 0xF
            and 0 <= address <= 0xFFF):
        raise ValueError("a PTZ command field out of range")
    b = [0xA5, 0x0F, address & 0xFF, code, data1, data2, (data3 << 4) | (address >> 8)]
    return bytes([*b, sum(b) % 256]).hex().upper()


def read_ptz(text: str) -> tuple[int, int, int, int]:
    """(instruction, data 1, data 2, data 3) of a `<PTZCmd>`; a wrong length, header or check is an XmlError."""
    try:
        b = bytes.fromhex(text.strip())
    except ValueError:
        raise XmlError("bad_ptz", f"PTZCmd {text[:32]!r} is not hex") from None
    if len(b) != 8 or b[0] != 0xA5 or (b[1] & 0x0F) != ((0xA + 0x5 + (b[1] >> 4)) % 16) or sum(b[:7]) % 256 != b[7]:
        raise XmlError("bad_ptz", f"PTZCmd {text[:32]!r} fails its checks (A.3.1)")
    return b[3], b[4], b[5], b[6] >> 4


def preset_call(sn: int, device_id: str, preset: int) -> bytes:
    """调用预置位 (A.3.5: instruction 0x82, data 2 the preset, 1-255) as a DeviceControl (A.2.3.1.2)."""
    if not 1 <= preset <= 255:
        raise ValueError("a preset is 1-255")
    return write("Control", "DeviceControl", sn, device_id, [("PTZCmd", ptz_cmd(PRESET_CALL, 0, preset))])


def local_time(epoch: float) -> str:
    """A MANSCDP time (A.2.1: `2026-12-07T10:00:00`, the device's local time, no zone)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


def read_local_time(text: str) -> float:
    """`local_time` read back (Unix seconds); XmlError when it is not one."""
    try:
        return time.mktime(time.strptime(text.strip()[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        raise XmlError("bad_time", f"not a MANSCDP time: {text[:40]!r}") from None


def record_info(sn: int, device_id: str, start: float, end: float) -> bytes:
    """录像文件检索 (GB/T 28181-2016 §9.7, A.2.4.5): the recordings of a channel between two times."""
    return write("Query", "RecordInfo", sn, device_id, [("StartTime", local_time(start)),
                                                          ("EndTime", local_time(end)), ("Secrecy", "0"),
                                                          ("Type", "all")])


def record_spans(body: Body) -> list[tuple[float, float]]:
    """The (start, end) of each `RecordList/Item` of a RecordInfo answer (A.2.6.6), in Unix seconds."""
    return [(read_local_time(i.findtext("StartTime") or ""), read_local_time(i.findtext("EndTime") or ""))
            for i in body.xml.findall("RecordList/Item")]


def reply_ok(cmd: str, sn: int, device_id: str) -> bytes:
    """The answer an alarm notification asks for (§9.4.2: `<Result>OK</Result>`)."""
    return write("Response", cmd, sn, device_id, [("Result", "OK")])


def device_list(items: list[CatalogItem]) -> ET.Element:
    dl = ET.Element("DeviceList", Num=str(len(items)))
    for c in items:
        it = ET.SubElement(dl, "Item")
        for tag, value in (("DeviceID", c.device_id), ("Name", c.name), ("Manufacturer", c.manufacturer),
                           ("Model", c.model), ("Owner", "gridwatch"), ("CivilCode", c.civil_code),
                           ("Address", c.address), ("Parental", "0"), ("ParentID", c.parent_id),
                           ("SafetyWay", "0"), ("RegisterWay", "1"), ("Secrecy", "0"), ("Status", c.status),
                           ("Longitude", "" if c.longitude is None else f"{c.longitude:.6f}"),
                           ("Latitude", "" if c.latitude is None else f"{c.latitude:.6f}")):
            ET.SubElement(it, tag).text = value
        if c.event:
            ET.SubElement(it, "Event").text = c.event
    return dl
