"""Sparkplug B payloads without a third-party client: the shipped schema, values by data type, the feed's births.

- The shipped descriptor is the shipped `.proto` compiled (grpcio-tools' protoc): editing one without the other
  fails here (`make proto` rebuilds it).
- Wire compatibility is checked on bytes written by hand from the protobuf encoding rules (field numbers of the
  Sparkplug 3.0.0 specification, ch. 6.4), not by our own encoder.
- Signed integers: the specification carries Int8..Int64 as two's complement in uint32/uint64; senders differ in
  the width they use (Eclipse Tahu writes Int8 -1 as 0xFF, others as 0xFFFFFFFF): both read as -1.
- A DDATA that names its metrics only by alias takes names and data types from the DBIRTH.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.errors import Rejected
from edge.feeds import FeedSet
from edge.message import Message
from edge.sensors.common import Limits
from gridwatch.core import sparkplug as spb

HERE = Path(spb.__file__).parent


def test_the_shipped_descriptor_is_the_shipped_proto_compiled(tmp_path):
    out = tmp_path / "sparkplug_b.desc"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{HERE}", f"--descriptor_set_out={out}",
                    str(HERE / "sparkplug_b.proto")], check=True)
    assert out.read_bytes() == (HERE / "sparkplug_b.desc").read_bytes(), "run `make proto`"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, wire: int, body: bytes) -> bytes:
    return _varint(num << 3 | wire) + body


def _metric_bytes(name: bytes, datatype: int, value: bytes) -> bytes:
    m = _field(1, 2, _varint(len(name)) + name) + _field(4, 0, _varint(datatype)) + value
    return _field(2, 2, _varint(len(m)) + m)


def test_hand_written_wire_bytes_decode_by_the_specification_field_numbers():
    import struct

    payload = (_field(1, 0, _varint(1_764_000_000_000))  # Payload.timestamp = 1
               + _metric_bytes(b"Sensors/CH4", spb.DOUBLE, _field(13, 1, struct.pack("<d", 6171.5)))  # double_value
               + _metric_bytes(b"Fault", spb.BOOLEAN, _field(14, 0, b"\x01"))  # boolean_value = 14
               + _metric_bytes(b"Tilt", spb.INT8, _field(10, 0, _varint(0xFF)))  # int_value = 10, Tahu's width
               + _metric_bytes(b"Offset", spb.INT32, _field(10, 0, _varint(0xFFFFFFFE)))
               + _metric_bytes(b"Count", spb.INT64, _field(11, 0, _varint((1 << 64) - 3)))  # long_value = 11
               + _metric_bytes(b"Name", spb.STRING, _field(15, 2, _varint(6) + "燃气".encode()))
               + _field(3, 0, _varint(7)))  # Payload.seq = 3
    p = spb.decode(payload)
    assert p.timestamp == 1_764_000_000_000 and p.seq == 7
    assert [(m.name, spb.value(m)) for m in p.metrics] == [
        ("Sensors/CH4", 6171.5), ("Fault", True), ("Tilt", -1), ("Offset", -2), ("Count", -3), ("Name", "燃气")]
    # and our encoder writes the same bytes for the same content
    again = spb.encode([spb.M("Sensors/CH4", spb.DOUBLE, 6171.5), spb.M("Fault", spb.BOOLEAN, True),
                        spb.M("Tilt", spb.INT8, -1)], timestamp=1_764_000_000_000, seq=7)
    head = (_field(1, 0, _varint(1_764_000_000_000))
            + _metric_bytes(b"Sensors/CH4", spb.DOUBLE, _field(13, 1, struct.pack("<d", 6171.5)))
            + _metric_bytes(b"Fault", spb.BOOLEAN, _field(14, 0, b"\x01"))
            + _metric_bytes(b"Tilt", spb.INT8, _field(10, 0, _varint(0xFF))))
    assert again == head + _field(3, 0, _varint(7))


@pytest.mark.parametrize("dt,v", [(spb.INT8, -128), (spb.INT16, -2), (spb.INT32, -(2**31)), (spb.INT64, -(2**63)),
                                  (spb.UINT32, 2**32 - 1), (spb.UINT64, 2**64 - 1), (spb.FLOAT, 0.5),
                                  (spb.DOUBLE, -1e300), (spb.BOOLEAN, False), (spb.TEXT, "水位"), (spb.INT16, None)])
def test_values_round_trip_by_data_type(dt, v):
    (m,) = spb.decode(spb.encode([spb.M("x", dt, v)])).metrics
    assert spb.value(m) == v and (m.is_null is (v is None))


def test_garbage_is_a_decode_error():
    with pytest.raises(Exception, match="(?i)error|truncated|parse"):
        spb.decode(b"\x0a\xff\xff")


def _feeds() -> FeedSet:
    from edge.config import EdgeConfig

    cfg = EdgeConfig.model_validate({"feeds": [{"preset": "sparkplug-b", "grid": "{group}"}]})
    return FeedSet(cfg.feed_specs(), Limits())


def test_ddata_by_alias_takes_names_and_signed_types_from_the_dbirth():
    feeds = _feeds()
    now = 1_764_000_000_000
    feeds.decode(Message("spBv1.0/g1/NBIRTH/n1", spb.encode([spb.M("bdSeq", spb.INT64, 3)], now, 0), now / 1000))
    feeds.decode(Message("spBv1.0/g1/DBIRTH/n1/tilt-1", spb.encode(
        [spb.M("Sensors/Tilt", spb.INT16, 0, now, alias=5), spb.M("Sensors/CH4", spb.DOUBLE, 1.0, now, alias=6)],
        now, 1), now / 1000))
    # the DDATA carries aliases and raw values only: no name, no datatype (allowed by Sparkplug 3.0)
    p = spb.Payload()
    p.timestamp, p.seq = now + 1000, 2
    a = p.metrics.add()
    a.alias, a.int_value, a.timestamp = 5, 0xFFFE, now + 1000
    b = p.metrics.add()
    b.alias, b.double_value = 6, 6171.0
    (ev,) = feeds.decode(Message("spBv1.0/g1/DDATA/n1/tilt-1", p.SerializeToString(), now / 1000 + 1))
    assert (ev.device, ev.grid, ev.metrics, ev.ts, ev.seq) == (
        "tilt-1", "g1", {"Sensors_Tilt": -2.0, "Sensors_CH4": 6171.0}, (now + 1000) / 1000, 2)
    with pytest.raises(Rejected) as rej:
        feeds.decode(Message("spBv1.0/g1/DDATA/n1/tilt-1", spb.encode([spb.M(None, spb.DOUBLE, 1.0, now, alias=9)],
                                                                         now, 3), now / 1000))
    assert rej.value.reason == "unknown_alias" and "alias 9 is not in the DBIRTH" in rej.value.detail
    [(topic, body)] = feeds.take_outgoing()
    assert topic == "spBv1.0/g1/NCMD/n1"
    assert [(m.name, spb.value(m)) for m in spb.decode(body).metrics] == [("Node Control/Rebirth", True)]
    with pytest.raises(Rejected) as rej:
        feeds.decode(Message("spBv1.0/g1/DDATA/n2/x", spb.encode([spb.M(None, spb.DOUBLE, 1.0, now, alias=1)], now),
                             now / 1000))
    assert rej.value.reason == "unknown_alias" and "before any DBIRTH" in rej.value.detail
    with pytest.raises(Rejected) as rej:
        feeds.decode(Message("spBv1.0/g1/NDATA/n1", b"\x0a\xff\xff", now / 1000))
    assert rej.value.reason == "bad_payload"
