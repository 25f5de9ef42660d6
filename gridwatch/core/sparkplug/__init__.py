"""Sparkplug B payloads (Eclipse Sparkplug 3.0.0, ch. 6.4): the protobuf schema, values by data type, encoding.

The message classes are built at import from the compiled schema shipped beside this module
(`sparkplug_b.desc`, compiled from `sparkplug_b.proto` by `make proto`), with the protobuf runtime every
gridwatch install already has: no generated code tied to one protoc, and no third-party Sparkplug client
(pysparkplug pins paho-mqtt<2, which gridwatch cannot install beside paho-mqtt 2).

What the edge and the simulators need and nothing more:
- `decode(data)` parses a payload (protobuf's DecodeError on garbage);
- `value(metric, datatype)` reads a metric's value as Python, by the data type the metric or its birth
  declared (signed integers travel as two's complement in uint32/uint64, spec 6.4.16);
- `encode(...)` / `metric(...)` build payloads for simulators, tests and rebirth requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "org.eclipse.tahu.protobuf"


def _load_payload_class() -> Any:
    data = resources.files(__package__).joinpath("sparkplug_b.desc").read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(data)
    pool = descriptor_pool.DescriptorPool()  # our own pool: never clashes with another copy of the schema
    for f in files.file:
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))


Payload: Any = _load_payload_class()
Metric: Any = Payload.Metric

# spec 6.4.16, DataType
INT8, INT16, INT32, INT64 = 1, 2, 3, 4
UINT8, UINT16, UINT32, UINT64 = 5, 6, 7, 8
FLOAT, DOUBLE, BOOLEAN, STRING, DATETIME, TEXT, UUID = 9, 10, 11, 12, 13, 14, 15
BYTES, FILE = 17, 18
_SIGNED_BITS = {INT8: 8, INT16: 16, INT32: 32, INT64: 64}
_FIELD = {INT8: "int_value", INT16: "int_value", INT32: "int_value", UINT8: "int_value", UINT16: "int_value",
          UINT32: "int_value", INT64: "long_value", UINT64: "long_value", DATETIME: "long_value",
          FLOAT: "float_value", DOUBLE: "double_value", BOOLEAN: "boolean_value", STRING: "string_value",
          TEXT: "string_value", UUID: "string_value", BYTES: "bytes_value", FILE: "bytes_value"}


def decode(data: bytes) -> Any:
    """The payload message; raises protobuf's DecodeError when the bytes are not one."""
    p = Payload()
    p.ParseFromString(data)
    return p


def value(m: Any, datatype: int | None = None) -> Any:
    """A metric's value as Python (None when is_null or no value is set); datatype: the birth's, when the
    metric itself omits it (NDATA may, spec 6.4.18 [tck-id-payloads-metric-datatype-not-req])."""
    if m.is_null:
        return None
    field = m.WhichOneof("value")
    if field is None:
        return None
    v = getattr(m, field)
    dt = m.datatype if m.HasField("datatype") else datatype
    bits = _SIGNED_BITS.get(dt or 0)
    if bits is not None and isinstance(v, int) and not isinstance(v, bool):
        v &= (1 << bits) - 1  # senders use the type's width (Tahu: 0xFF for Int8 -1) or the field's (0xFFFFFFFF)
        if v >= 1 << (bits - 1):
            v -= 1 << bits
    return v


@dataclass(frozen=True)
class M:
    """One metric to encode."""

    name: str | None
    datatype: int
    value: Any
    timestamp: int | None = None
    alias: int | None = None


def metric(into: Any, m: M) -> None:
    """Append `m` to a payload's metrics."""
    out = into.metrics.add()
    if m.name is not None:
        out.name = m.name
    if m.alias is not None:
        out.alias = m.alias
    if m.timestamp is not None:
        out.timestamp = m.timestamp
    out.datatype = m.datatype
    if m.value is None:
        out.is_null = True
        return
    field = _FIELD[m.datatype]
    v = m.value
    bits = _SIGNED_BITS.get(m.datatype)
    if bits is not None:
        v = int(v) & ((1 << bits) - 1)  # two's complement in the type's width, as Eclipse Tahu writes it
    setattr(out, field, v)


def encode(metrics: list[M], timestamp: int | None = None, seq: int | None = None) -> bytes:
    """A Sparkplug B payload's bytes."""
    p = Payload()
    if timestamp is not None:
        p.timestamp = timestamp
    if seq is not None:
        p.seq = seq
    for m in metrics:
        metric(p, m)
    return bytes(p.SerializeToString())
