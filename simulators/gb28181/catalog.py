"""The emulated platform's channels and its MANSCDP bodies: catalog items (§9.5.2) in pages, written from the
standard's examples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Transport = Literal["udp", "tcp"]


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    id: str
    name: str
    civil_code: str
    longitude: float
    latitude: float
    address: str = ""
    manufacturer: str = "Hikvision"
    model: str = "DS-2CD3T47"
    status: str = "ON"


def make_channels(n: int, centre: str = "44030500", civil_codes: tuple[str, ...] = ("440305001", "440305002"),
                  base: tuple[float, float] = (113.9300, 22.5300)) -> list[ChannelInfo]:
    """`n` cameras with ids by GB/T 28181 Annex D (centre code 8, industry 00, type 131 camera, network 0,
    serial 6), named and placed around `base` (Nanshan, Shenzhen), spread over `civil_codes`."""
    out = []
    for i in range(1, n + 1):
        cc = civil_codes[(i - 1) % len(civil_codes)]
        out.append(ChannelInfo(f"{centre}001310{i:06d}", f"{cc[-3:]}街道{i}号路口摄像机", cc,
                               round(base[0] + (i % 100) * 0.0005, 6), round(base[1] + (i // 100) * 0.0005, 6),
                               f"深圳市南山区{cc[-3:]}街道{i}号"))
    return out


def manscdp(root: str, cmd: str, sn: int, device_id: str, inner: str, charset: str) -> bytes:
    text = (f'<?xml version="1.0" encoding="{charset}"?>\r\n<{root}>\r\n<CmdType>{cmd}</CmdType>\r\n'
            f"<SN>{sn}</SN>\r\n<DeviceID>{device_id}</DeviceID>\r\n{inner}</{root}>\r\n")
    return text.encode("gb18030" if charset.upper().startswith("GB") else "utf-8")


def esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def catalog_items(items: list[ChannelInfo], parent: str, event: str = "") -> str:
    parts = []
    for c in items:
        ev = f"<Event>{event}</Event>\r\n" if event else ""
        parts.append(f"<Item>\r\n<DeviceID>{c.id}</DeviceID>\r\n<Name>{esc(c.name)}</Name>\r\n"
                     f"<Manufacturer>{esc(c.manufacturer)}</Manufacturer>\r\n<Model>{esc(c.model)}</Model>\r\n"
                     f"<Owner>Owner</Owner>\r\n<CivilCode>{c.civil_code}</CivilCode>\r\n"
                     f"<Address>{esc(c.address)}</Address>\r\n<Parental>0</Parental>\r\n"
                     f"<ParentID>{parent}</ParentID>\r\n<SafetyWay>0</SafetyWay>\r\n<RegisterWay>1</RegisterWay>\r\n"
                     f"<Secrecy>0</Secrecy>\r\n<Status>{c.status}</Status>\r\n"
                     f"<Longitude>{c.longitude:.6f}</Longitude>\r\n<Latitude>{c.latitude:.6f}</Latitude>\r\n"
                     f"{ev}</Item>\r\n")
    return f'<DeviceList Num="{len(items)}">\r\n' + "".join(parts) + "</DeviceList>\r\n"
