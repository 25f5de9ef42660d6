"""Sparkplug B (Eclipse Sparkplug 3.0): protobuf payloads (gridwatch.core.sparkplug), births remembered.

`spBv1.0/{group}/{type}/{node}[/{device}]`:
- NBIRTH / DBIRTH: the node's (device's) metric names, aliases and types are remembered; the node
  (device) is online; its metric values are readings.
- NDATA / DDATA: metric values by name or alias. An alias not seen in a birth is rejected
  (`unknown_alias`) and a rebirth is requested (NCMD `Node Control/Rebirth`, at most every 10 s a node).
- NDEATH: the node's connection is gone (the broker sends its will); with a bdSeq matching the last
  NBIRTH it marks the node and every device behind it offline; an older bdSeq is a stale death and ignored.
- DDEATH: one device offline.
Metric names become metric ids with `/` and spaces as `_` (`Sensors/Temperature` -> `Sensors_Temperature`);
`Node Control/*`, `Properties/*` and `bdSeq` are not readings. The device id of node-level metrics is the
node id.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from edge.errors import Rejected
from edge.feeds.mapper import Context, Source, gateway_events
from edge.feeds.spec import FeedSpec
from edge.feeds.values import checked, device_id, metric_name
from edge.message import Event, Message
from edge.sensors.common import check_size
from gridwatch.core import sparkplug as spb

logger = logging.getLogger(__name__)

NOT_READINGS = ("Node Control/", "Properties/", "Device Control/")
REBIRTH_EVERY = 10.0
_TYPES = ("NBIRTH", "DBIRTH", "NDATA", "DDATA", "NDEATH", "DDEATH")


class Birth:
    """What a birth declared: metric names by alias, data types by name."""

    __slots__ = ("names", "types", "bdseq")

    def __init__(self, payload: Any) -> None:
        self.names: dict[int, str] = {}
        self.types: dict[str, int] = {}
        self.bdseq: int | None = None
        for m in payload.metrics:
            if not m.HasField("name"):
                continue
            if m.HasField("alias"):
                self.names[m.alias] = m.name
            if m.HasField("datatype"):
                self.types[m.name] = m.datatype
            if m.name == "bdSeq":
                v = spb.value(m)
                self.bdseq = v if isinstance(v, int) and not isinstance(v, bool) else None


class SparkplugFeed:
    def __init__(self, spec: FeedSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.root = spec.topic.split("/")[0]
        self.group_filter = spec.topic.split("/")[1]
        self.filter = spec.topic
        self.grid = Source(spec.grid) if spec.grid is not None else None
        self.births: dict[tuple[str, str, str | None], Birth] = {}  # (group, node, device) -> its birth
        self.bdseq: dict[tuple[str, str], int] = {}
        self.devices: dict[tuple[str, str], set[str]] = {}
        self.outgoing: list[tuple[str, bytes]] = []
        self._asked: dict[tuple[str, str], float] = {}
        self._names: dict[str, str | None] = {}

    def match(self, topic: str) -> dict[str, str] | None:
        parts = topic.split("/")
        if len(parts) not in (4, 5) or parts[0] != self.root:
            return None
        if self.group_filter != "+" and parts[1] != self.group_filter:
            return None
        return {"group": parts[1], "type": parts[2], "node": parts[3], "device": parts[4] if len(parts) == 5 else ""}

    def _grid(self, caps: dict[str, str], dev: str, ctx: Context) -> str:
        if self.grid is None:
            raise Rejected("missing_field", f"feed {self.name}: no grid (set grid: to an id, {{group}}, "
                                            f"{{node}} or @registry)")
        if self.grid.how == "registry":
            return ctx.grid_of(dev, self.name)
        return device_id(self.grid.raw(caps, None, None), self.name, "grid")

    def decode(self, msg: Message, caps: dict[str, str], ctx: Context) -> list[Event]:
        kind = caps["type"]
        if kind not in _TYPES:  # NCMD / DCMD / STATE: commands and host state, not device data
            return []
        check_size(msg.payload, ctx.limits)
        group, node, device = caps["group"], caps["node"], caps["device"] or None
        gw = device_id(node, self.name, "node")
        dev = device_id(device, self.name, "device") if device else gw
        if kind == "NDEATH":
            return self._ndeath(msg, caps, group, node, gw, ctx)
        if kind == "DDEATH":
            self.births.pop((group, node, device), None)
            return [Event(kind="status", grid=self._grid(caps, dev, ctx), device=dev, ts=msg.received_at,
                          received_at=msg.received_at, event="offline", device_kind="sensor")]
        key = (group, node, device)
        try:
            payload = spb.decode(msg.payload)
        except Exception as exc:  # protobuf's DecodeError and kin
            raise Rejected("bad_payload", f"feed {self.name}: {msg.topic}: not a Sparkplug B payload: "
                                          f"{type(exc).__name__}: {exc}") from None
        birth = Birth(payload) if kind in ("NBIRTH", "DBIRTH") else self.births.get(key)
        named = self._named(msg, payload, birth, group, node, device)
        grid = self._grid(caps, dev, ctx)
        out: list[Event] = []
        if kind == "NBIRTH":
            self.births = {k: v for k, v in self.births.items() if k[:2] != (group, node)}
            assert birth is not None
            self.births[key] = birth
            if birth.bdseq is not None:
                self.bdseq[(group, node)] = birth.bdseq
            out += gateway_events(gw, grid, "sensor", "online", msg.received_at, ctx)
        elif kind == "DBIRTH":
            assert birth is not None
            self.births[key] = birth
            self.devices.setdefault((group, node), set()).add(dev)
            ctx.learn(gw, dev, grid, "sensor")
            out.append(Event(kind="status", grid=grid, device=dev, ts=msg.received_at, received_at=msg.received_at,
                             event="online", device_kind="sensor"))
        elif device:
            ctx.learn(gw, dev, grid, "sensor")
        reading = self._reading(msg, payload, named, grid, dev, ctx)
        if reading is not None:
            out.append(reading)
        return out

    def _named(self, msg: Message, payload: Any, birth: Birth | None, group: str, node: str,
               device: str | None) -> list[tuple[str, Any, int | None]]:
        """Each metric's name, value (by its data type or its birth's) and time; an alias no birth named is
        refused and a rebirth asked for."""
        out: list[tuple[str, Any, int | None]] = []
        which = "D" if device else "N"
        for m in payload.metrics:
            if m.HasField("name"):
                name = m.name
            elif not m.HasField("alias"):
                raise Rejected("bad_payload", f"feed {self.name}: {msg.topic}: a metric with neither name nor alias")
            elif birth is None:
                self._rebirth(group, node, msg.received_at)
                raise Rejected("unknown_alias", f"feed {self.name}: {msg.topic}: alias {m.alias} before any "
                                                f"{which}BIRTH; rebirth requested")
            elif m.alias in birth.names:
                name = birth.names[m.alias]
            else:
                self._rebirth(group, node, msg.received_at)
                raise Rejected("unknown_alias", f"feed {self.name}: {msg.topic}: alias {m.alias} is not in the "
                                                f"{which}BIRTH; rebirth requested")
            dt = birth.types.get(name) if birth is not None else None
            out.append((name, spb.value(m, dt), m.timestamp if m.HasField("timestamp") else None))
        return out

    def _reading(self, msg: Message, payload: Any, named: list[tuple[str, Any, int | None]], grid: str,
                 dev: str, ctx: Context) -> Event | None:
        metrics: dict[str, float] = {}
        newest: int | None = None
        for name, v, stamp in named:
            if name == "bdSeq" or name.startswith(NOT_READINGS):
                continue
            if isinstance(v, bool):
                v = 1.0 if v else 0.0
            if not isinstance(v, int | float) or v != v or v in (float("inf"), float("-inf")):
                continue
            mid = self._names.get(name, "")
            if mid == "":
                mid = metric_name(name)
                if len(self._names) < 10_000:
                    self._names[name] = mid
            if mid is None:
                continue
            metrics[mid] = float(v)
            if stamp is not None:
                newest = stamp if newest is None else max(newest, stamp)
        if not metrics:
            return None
        raw = newest if newest is not None else (payload.timestamp if payload.HasField("timestamp") else None)
        if raw is None:
            raise Rejected("bad_ts", f"feed {self.name}: {msg.topic}: neither the payload nor a metric has a "
                                     f"timestamp (Sparkplug 3.0 requires one)")
        ts = checked(raw / 1000.0, msg.received_at, ctx.limits, self.name, "timestamp", raw)
        return Event(kind="sensor", grid=grid, device=dev, ts=ts, received_at=msg.received_at,
                     seq=payload.seq if payload.HasField("seq") else None, metrics=metrics)

    def _ndeath(self, msg: Message, caps: dict[str, str], group: str, node: str, gw: str,
                ctx: Context) -> list[Event]:
        try:
            death = spb.decode(msg.payload)
        except Exception as exc:
            raise Rejected("bad_payload", f"feed {self.name}: {msg.topic}: not a Sparkplug B NDEATH: {exc}") from None
        seq = next((spb.value(m) for m in death.metrics if m.name == "bdSeq"), None)
        known = self.bdseq.get((group, node))
        if known is not None and isinstance(seq, int) and seq != known:
            raise Rejected("stale_death", f"feed {self.name}: {msg.topic}: bdSeq {seq} is not the live session's "
                                          f"{known}; an older connection's will, ignored")
        self.births = {k: v for k, v in self.births.items() if k[:2] != (group, node)}
        grid = None
        if self.grid is not None and self.grid.how != "registry":
            grid = self._grid(caps, gw, ctx)
        return gateway_events(gw, grid, "sensor", "offline", msg.received_at, ctx)

    def _rebirth(self, group: str, node: str, now: float) -> None:
        if now - self._asked.get((group, node), float("-inf")) < REBIRTH_EVERY:
            return
        self._asked[(group, node)] = now
        cmd = spb.encode([spb.M("Node Control/Rebirth", spb.BOOLEAN, True)], timestamp=int(time.time() * 1000))
        self.outgoing.append((f"{self.root}/{group}/NCMD/{node}", cmd))
        logger.info("sparkplug: asked %s/%s for a rebirth", group, node)
