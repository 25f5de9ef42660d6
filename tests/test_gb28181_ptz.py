"""PTZ preset calls (issue 41's 视频复核, the groundwork): the `<PTZCmd>` codec written from GB/T 28181-2016
A.3.1 and A.3.5, and the emulated platform turning a channel to a preset and streaming that preset's view."""

from __future__ import annotations

import socket
import time

import pytest

from gridwatch.core.gb28181 import manscdp
from simulators.gb28181 import GbDevice, make_channels
from tests.agentkit import wait_until


def test_a_preset_call_is_the_eight_bytes_the_standard_lays_out():
    # A.3.1: A5, version 0 | check (0xA + 0x5 + 0) % 16, address 1, 0x82 (A.3.5 call), data 1 = 0, data 2 = the
    # preset, data 3 = 0 | address high bits 0, then the sum of the seven modulo 256 (0x13C -> 0x3C)
    assert manscdp.ptz_cmd(manscdp.PRESET_CALL, 0, 5) == "A50F01820005003C"
    assert manscdp.read_ptz("A50F01820005003C") == (0x82, 0, 5, 0)
    assert manscdp.read_ptz(manscdp.ptz_cmd(manscdp.PRESET_SET, 0, 255, address=0x123)) == (0x81, 0, 255, 0)
    for bad in ("A50F01820005003D", "A50E01820005003B", "B50F01820005004C", "A50F018200050", "zz"):
        with pytest.raises(manscdp.XmlError):
            manscdp.read_ptz(bad)
    body = manscdp.parse(manscdp.preset_call(7, "44030500001320000001", 12))
    assert (body.root, body.cmd, body.sn, body.device_id) == ("Control", "DeviceControl", 7, "44030500001320000001")
    assert manscdp.read_ptz(body.text("PTZCmd")) == (0x82, 0, 12, 0)
    with pytest.raises(ValueError):
        manscdp.preset_call(1, "x", 0)


def test_the_emulated_platform_turns_a_channel_to_a_preset_and_ignores_a_command_that_fails_its_check(tmp_path):
    gateway = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gateway.bind(("127.0.0.1", 0))
    channel = make_channels(1)[0].id
    view = tmp_path / "preset-2.h264"
    dev = GbDevice(gateway.getsockname(), "44030500002000000001", "4403050000", "44030500002160000001", "pw",
                   channels=make_channels(1), presets={2: view}).start()
    try:
        for n, ptz in enumerate((manscdp.ptz_cmd(manscdp.PRESET_CALL, 0, 2), "A50F01820003003C")):
            body = manscdp.write("Control", "DeviceControl", n + 1, channel, [("PTZCmd", ptz)])
            head = (f"MESSAGE sip:{channel}@4403050000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK{n}\r\n"
                    f"From: <sip:44030500002000000001@4403050000>;tag=a{n}\r\nTo: <sip:{channel}@4403050000>\r\n"
                    f"Call-ID: ptz-{n}\r\nCSeq: {n + 1} MESSAGE\r\nContent-Type: Application/MANSCDP+xml\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n")
            gateway.sendto(head.encode() + body, dev.here)
            assert wait_until(lambda k=n: len(dev.got) > k, 5)
        time.sleep(0.3)
        assert dev.ptz == [(channel, 0x82, 2)] and dev.preset == {channel: 2}  # the second failed its check
        assert dev.presets[dev.preset[channel]] == view  # what an INVITE of the channel now streams
    finally:
        dev.close()
        gateway.close()


def test_a_plain_keepalive_is_read_without_the_xml_parser_and_anything_else_is_left_to_it():
    """The keepalive fast path (10,000 devices a minute): the plain form of A.2.5.2 is read by one anchored
    pattern; a DTD, an `Info` list, another encoding or another command is not, and goes to the hardened parser
    (which refuses the DTD with its reason)."""
    from simulators.gb28181.catalog import manscdp as write

    plain = write("Notify", "Keepalive", 7, "44030500002000000001", "<Status>OK</Status>\r\n", "GB2312")
    assert manscdp.keepalive(plain) == (7, "44030500002000000001")
    assert manscdp.keepalive(plain.replace(b"GB2312", b"UTF-8")) == (7, "44030500002000000001")
    hostile = plain.replace(b"<Notify>", b'<!DOCTYPE n [<!ENTITY x "y">]><Notify>')
    for other in (hostile, plain.replace(b"GB2312", b"ISO-8859-1"),
                  plain.replace(b"OK</Status>", b"OK</Status><Info><DeviceID>1</DeviceID></Info>"),
                  plain.replace(b"Keepalive", b"Alarm"), plain + b"<Notify/>"):
        assert manscdp.keepalive(other) is None, other
    with pytest.raises(manscdp.XmlError) as refused:
        manscdp.parse(hostile)
    assert refused.value.reason == "xml_forbidden"
