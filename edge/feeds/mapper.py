"""One compiled feed: a topic filter with captures, and the mapping of its payloads to events.

`CompiledFeed.match(topic)` gives the captures (or None); `decode(msg, captures, ctx)` the events. A data
message may carry many devices (`each_device`) and many records (`records`); a status message says
online / offline for one device or, with `scope: gateway`, for every device behind a gateway.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from edge.errors import Rejected
from edge.feeds.paths import MISSING, Path
from edge.feeds.spec import CAPTURE, FeedSpec, default_states, source_kind
from edge.feeds.values import checked, device_id, metric_name, number, shown, stamp
from edge.message import Event, Message
from edge.sensors.common import Limits, check_size

FENCE = ("breach", "tamper", "restore", "fault")


def with_lower(words: dict[str, float]) -> dict[str, float]:
    """A word map that also answers in lower case (`OFF`, `Off` and `off` alike)."""
    return {**{k.lower(): v for k, v in words.items()}, **words}


def topic_regex(topic: str) -> re.Pattern[str]:
    out = []
    for level in topic.split("/"):
        m = CAPTURE.fullmatch(level)
        if m:
            out.append(f"(?P<{m.group(1)}>[^/]+)")
        elif level == "+":
            out.append("[^/]+")
        elif level == "#":
            out.append("#")
        else:
            out.append(re.escape(level))
    text = "/".join(out)
    if text.endswith("/#"):  # `a/#` matches `a` as well as everything below it
        text = text[:-2] + "(?:/.*)?"
    return re.compile(text + r"\Z")


def topic_filter(topic: str) -> str:
    return CAPTURE.sub("+", topic)


@dataclass
class Context:
    """What a feed needs from the agent: the device list and the limits; what it learns: gateways."""

    limits: Limits
    registry: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)  # device -> grid, kind, gw
    members: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # gateway -> device -> grid

    def learn(self, gateway: str, device: str, grid: str, kind: str) -> None:
        seen = self.members.setdefault(gateway, {})
        if device not in seen and len(seen) < 100_000:
            seen[device] = (grid, kind)

    def grid_of(self, device: str, feed: str) -> str:
        """`grid: @registry`: the device list's grid of the device."""
        entry = self.registry.get(device)
        if entry is None:
            raise Rejected("unknown_device", f"feed {feed}: device {device!r} is not in the device list "
                                             f"(grid: @registry)")
        return entry[0]

    def behind(self, gateway: str) -> dict[str, tuple[str, str]]:
        out = {d: (g, k) for d, (g, k, gw) in self.registry.items() if gw == gateway}
        out.update(self.members.get(gateway, {}))
        return out


class Source:
    """Where a grid, device or gateway id comes from."""

    __slots__ = ("text", "how", "arg", "path")

    def __init__(self, text: str) -> None:
        self.text = text
        self.how = source_kind(text)
        self.arg = CAPTURE.fullmatch(text).group(1) if self.how == "capture" else text  # type: ignore[union-attr]
        self.path = Path(text) if self.how == "path" else None

    def raw(self, caps: dict[str, str], body: Any, key: str | None) -> Any:
        if self.how == "capture":
            return caps.get(self.arg)
        if self.path is not None:
            v = self.path.get(body)
            return None if v is MISSING else v
        if self.how == "key":
            return key
        return self.arg


class CompiledFeed:
    def __init__(self, spec: FeedSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.regex = topic_regex(spec.topic)
        self.filter = topic_filter(spec.topic)
        self.ignore = [topic_regex(t) for t in spec.ignore]
        captures = CAPTURE.findall(spec.topic)
        grid = spec.grid or ("{grid}" if "grid" in captures else None)
        self.grid = Source(grid) if grid is not None else None
        dev = spec.device or ("{device}" if "device" in captures else None)
        self.device = Source(dev) if dev is not None else None
        self.gateway = Source(spec.gateway) if spec.gateway is not None else None
        self.ts_path = Path(spec.ts.path) if spec.ts.path else None
        self.words = with_lower(spec.values)
        self.metrics = [(name, Path(m.path), with_lower({**spec.values, **m.map}),
                         spec.numeric_strings if m.numeric_strings is None else m.numeric_strings, m.scale, m.optional)
                        for name, m in spec.metrics.items()]
        self.collect = Path(spec.collect.path) if spec.collect else None
        self.skip = frozenset(spec.collect.skip) if spec.collect else frozenset()
        self.event = Path(spec.event.path) if spec.event else None
        self.zone = Source(spec.event.zone) if spec.event and spec.event.zone else None
        self.state = Path(spec.state.path)
        self.states = {**default_states(), **{k.lower(): v for k, v in spec.state.map.items()}}
        self.records = Path(spec.records) if spec.records else None
        self.each_device = Path(spec.each_device) if spec.each_device else None
        self._collected: dict[str, str | None] = {}
        self._numeric: set[str] = set()  # collected fields seen as numbers: a word there later is an error

    def match(self, topic: str) -> dict[str, str] | None:
        m = self.regex.match(topic)
        return m.groupdict() if m else None

    # ---- the payload ----------------------------------------------------------------------------
    def body(self, msg: Message, limits: Limits) -> Any:
        check_size(msg.payload, limits)
        try:
            return json.loads(msg.payload)
        except (UnicodeDecodeError, ValueError) as exc:
            if self.spec.format == "auto":
                try:
                    return msg.payload.decode("utf-8").strip()
                except UnicodeDecodeError:
                    pass
            raise Rejected("bad_json", f"feed {self.name}: payload is not JSON: {exc}") from None
        except RecursionError:
            raise Rejected("bad_json", f"feed {self.name}: payload is nested too deeply") from None

    def decode(self, msg: Message, caps: dict[str, str], ctx: Context) -> list[Event]:
        body = self.body(msg, ctx.limits)
        if self.spec.role == "status":
            return self._status(msg, caps, body, ctx)
        out: list[Event] = []
        if self.each_device is not None:
            holder = self.each_device.get(body)
            if not isinstance(holder, dict):
                raise Rejected("wrong_type", f"feed {self.name}: {self.each_device.text}: expected an object of "
                                             f"devices, got {shown(holder if holder is not MISSING else None)}")
            for key, recs in holder.items():
                for rec in (recs if isinstance(recs, list) else [recs]):
                    out.append(self._record(msg, caps, rec, key, ctx))
            return out
        if self.records is not None:
            found = self.records.all(body)
            if len(found) == 1 and isinstance(found[0], list):
                found = found[0]
            if not found:
                raise Rejected("missing_field", f"feed {self.name}: {self.records.text}: no records")
            return [self._record(msg, caps, rec, None, ctx, top=body) for rec in found]
        return [self._record(msg, caps, body, None, ctx)]

    def _ids(self, caps: dict[str, str], body: Any, key: str | None, ctx: Context,
             top: Any = None) -> tuple[str, str]:
        if self.device is None:
            raise Rejected("missing_field", f"feed {self.name}: no device source")
        src = top if top is not None and self.device.how == "path" else body
        dev = device_id(self.device.raw(caps, src, key), self.name, self.device.text)
        assert self.grid is not None
        if self.grid.how == "registry":
            return ctx.grid_of(dev, self.name), dev
        gsrc = top if top is not None and self.grid.how == "path" else body
        grid = device_id(self.grid.raw(caps, gsrc, key), self.name, f"grid {self.grid.text}")
        return grid, dev

    def _record(self, msg: Message, caps: dict[str, str], body: Any, key: str | None, ctx: Context,
                top: Any = None) -> Event:
        grid, dev = self._ids(caps, body, key, ctx, top)
        ts = self._ts(msg, body, top, ctx.limits)
        gw = self.gateway.raw(caps, body, key) if self.gateway is not None else None
        ctx.learn(str(gw) if gw else self.spec.group, dev, grid, self.spec.kind)
        if self.spec.kind == "fence":
            return self._fence(msg, caps, body, key, grid, dev, ts)
        metrics: dict[str, float] = {}
        for name, path, words, numeric, scale, optional in self.metrics:
            v = path.get(body)
            if v is MISSING or v is None:
                if optional:
                    continue
                raise Rejected("missing_field", f"feed {self.name}: {path.text}: not in the payload")
            metrics[name] = number(v, self.name, path.text, words, numeric) * scale
        if self.collect is not None:
            self._collect(body, metrics)
        if not metrics:
            raise Rejected("missing_field", f"feed {self.name}: no metrics in the payload")
        if len(metrics) > ctx.limits.max_metrics:
            raise Rejected("oversize", f"feed {self.name}: {len(metrics)} metrics, limit {ctx.limits.max_metrics}")
        return Event(kind="sensor", grid=grid, device=dev, ts=ts, received_at=msg.received_at, metrics=metrics)

    def _collect(self, body: Any, metrics: dict[str, float]) -> None:
        assert self.collect is not None and self.spec.collect is not None
        where = self.collect.text
        obj = self.collect.get(body)
        if not isinstance(obj, dict):
            raise Rejected("wrong_type" if obj is not MISSING else "missing_field",
                           f"feed {self.name}: {where}: expected an object of values, "
                           f"got {shown(None if obj is MISSING else obj)}")
        member, words, numeric = self.spec.collect.member, self.words, self.spec.numeric_strings
        stack: list[tuple[str, dict[str, Any]]] = [(self.spec.collect.prefix, obj)]
        while stack:
            prefix, node = stack.pop()
            for k, v in node.items():
                if k in self.skip:
                    continue
                if isinstance(v, dict):
                    if member is not None:
                        v = v.get(member)
                    else:
                        stack.append((f"{prefix}{k}_", v))
                        continue
                if isinstance(v, float) and v - v == 0.0:  # the common case: a finite float
                    out: float = v
                elif isinstance(v, bool | int | float) or (isinstance(v, str) and (
                        v in words or v.lower() in words or numeric)):
                    out = number(v, self.name, f"{where}.{prefix.replace('_', '.')}{k}", words, numeric)
                elif isinstance(v, str) and prefix + k in self._numeric:  # was a number: "n/a" is a fault
                    raise Rejected("wrong_type", f"feed {self.name}: {where}.{prefix.replace('_', '.')}{k}: "
                                                 f"expected a number, got {shown(v)}")
                else:
                    continue  # text, lists, nulls: not readings
                full = prefix + k
                if full not in self._numeric and len(self._numeric) < 10_000:
                    self._numeric.add(full)
                name = self._collected.get(full, MISSING)
                if name is MISSING:
                    name = metric_name(full)
                    if len(self._collected) < 10_000:
                        self._collected[full] = name
                if name is not None:
                    metrics[name] = out

    def _fence(self, msg: Message, caps: dict[str, str], body: Any, key: str | None, grid: str, dev: str,
               ts: float) -> Event:
        assert self.event is not None and self.spec.event is not None
        raw = self.event.get(body)
        word = str(raw).lower() if isinstance(raw, str | bool | int) else None
        mapped: str | None = None
        if word is not None:
            table = {k.lower(): v for k, v in self.spec.event.map.items()}
            mapped = table.get(word, word if word in FENCE else None)
        if mapped is None:
            raise Rejected("bad_field", f"feed {self.name}: {self.event.text}: {shown(None if raw is MISSING else raw)}"
                                        f" is not one of {list(FENCE)} (add it to event.map)")
        if mapped == "ignore":
            raise Rejected("ignored", f"feed {self.name}: {self.event.text}: {shown(raw)} is mapped to ignore")
        zone = None
        if self.zone is not None:
            z = self.zone.raw(caps, body, key)
            zone = str(z) if z is not None else None
        return Event(kind="fence", grid=grid, device=dev, ts=ts, received_at=msg.received_at, event=mapped,
                     zone=zone)

    def _ts(self, msg: Message, body: Any, top: Any, limits: Limits) -> float:
        spec = self.spec.ts
        if spec.format == "receive" or self.ts_path is None:
            return msg.received_at
        found = self.ts_path.all(body)
        if not found and top is not None:
            found = self.ts_path.all(top)
        if not found or found == [None]:
            if spec.required:
                raise Rejected("missing_field", f"feed {self.name}: {self.ts_path.text}: no time stamp in the payload")
            return msg.received_at
        where = self.ts_path.text
        ts = max(stamp(v, spec.format, spec.tz, self.name, where) for v in found)
        return checked(ts, msg.received_at, limits, self.name, where, found[0])

    # ---- status -------------------------------------------------------------------------------
    def _status(self, msg: Message, caps: dict[str, str], body: Any, ctx: Context) -> list[Event]:
        state = self.spec.state.value or self._state_word(body)
        if state == "ignore":
            return []
        if self.spec.scope == "device":
            gid, dev = self._ids(caps, body, None, ctx)
            return [Event(kind="status", grid=gid, device=dev, ts=msg.received_at, received_at=msg.received_at,
                          event=state, device_kind=self.spec.kind)]
        raw = self.gateway.raw(caps, body, None) if self.gateway is not None else None
        gw = str(raw) if raw else self.spec.group
        grid: str | None = None
        if self.grid is not None and self.grid.how not in ("registry", "key"):
            g = self.grid.raw(caps, body, None)
            grid = device_id(g, self.name, "grid") if g is not None else None
        return gateway_events(gw, grid, self.spec.kind, state, msg.received_at, ctx)

    def _state_word(self, body: Any) -> str:
        raw = body if isinstance(body, str) else self.state.get(body)
        word = str(raw).lower() if isinstance(raw, str | bool | int) else None
        if isinstance(raw, bool):
            word = "true" if raw else "false"
        state = self.states.get(word) if word is not None else None
        if state is None:
            where = "payload" if isinstance(body, str) else self.state.text
            raise Rejected("bad_field", f"feed {self.name}: {where}: state {shown(None if raw is MISSING else raw)} "
                                        f"is neither online nor offline (add it to state.map)")
        return state


def gateway_events(gateway: str, grid: str | None, kind: str, state: str, now: float, ctx: Context) -> list[Event]:
    """A gateway went offline (or came back): one status event for each device behind it, marked as
    coming from the gateway, then one for the gateway itself listing them."""
    behind = ctx.behind(gateway)
    gw_id = device_id(gateway, gateway, "gateway")
    out = [Event(kind="status", grid=g, device=d, ts=now, received_at=now, event=state,
                 device_kind=k, gateway=gw_id) for d, (g, k) in sorted(behind.items())]
    if grid is None:
        grids = sorted({g for g, _ in behind.values()})
        grid = grids[0] if grids else None
    if grid is not None:
        out.append(Event(kind="status", grid=grid, device=gw_id, ts=now, received_at=now, event=state,
                         device_kind=kind if kind in ("sensor", "fence", "camera", "thermal") else "sensor",
                         members=tuple(sorted(behind))))
    return out
