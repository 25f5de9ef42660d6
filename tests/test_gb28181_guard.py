"""布防/撤防 (issue 41): an operator disarms a platform's channel through the hub (what the board's button sends),
the gateway sends the platform `DeviceControl` `ResetGuard` (GB/T 28181-2016 A.2.3.1.3), the emulated platform
answers `<Result>OK</Result>` (A.2.6.2) and stops reporting that channel's alarms, and the hub shows the state
the device confirmed; an alarm that still comes (a device that ignores 撤防) opens no case. Armed again
(`SetGuard`), the channel's next alarm opens a case by the shipped rules. Both commands are in the audit trail
with who gave them."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.agent import Agent
from edge.gb28181.config import GbGatewayConfig
from edge.gb28181.gateway import GbGateway
from gridwatch.core.gb28181 import manscdp
from simulators.gb28181 import GbDevice, make_channels
from tests.agentkit import agent_config, wait_until
from tests.hubkit import EDGE, VIEW01, Hub
from tests.test_gb28181 import DOMAIN, PLATFORM, SERVER, SLA, gateway

ADMIN = "guard-admin-key"


@pytest.mark.e2e  # make e2e-test: a hub, an agent on the shipped rules, the gateway and a platform
def test_disarm_then_arm_from_the_hub_reaches_the_platform_and_only_armed_alarms_open_cases(broker, tmp_path):
    hub = Hub(tmp_path / "hub", SLA, keys=[{"name": "admin", "role": "admin", "key": ADMIN}]).start()
    channels = make_channels(4)
    c = channels[1]  # civil code 440305002: grid-02
    gw = gateway(broker, "gb-guard", hub=hub)
    agent = Agent(agent_config(tmp_path / "agent", broker, hub.url, Path("configs/rules.yaml").read_text(),
                               hub={"key": EDGE}, mqtt={"topic_root": "gb-guard", "protocol": "v311"}))
    plat = GbDevice(("127.0.0.1", gw.port), SERVER, DOMAIN, PLATFORM, "test-only-pw-1", channels=channels).start()

    def guard_of(did: str) -> dict:
        return next((g for g in hub.get("/api/v1/devices/guards")["guards"] if g["id"] == did), {})

    def cases_of(did: str) -> list[dict]:
        return [x for x in hub.get("/api/v1/cases")["cases"] if x["device"] == did]

    try:
        agent.start()
        assert agent.mqtt.wait_connected(10)
        assert plat.register() == 200
        assert wait_until(lambda: any(d["id"] == c.id for d in hub.get("/api/v1/devices?q=" + c.id)["devices"]), 15)

        r = hub.call("POST", f"/api/v1/devices/{c.id}/guard", json={"state": "disarmed"})
        assert r.status_code == 200, r.text
        assert r.json()["guard"] == "disarmed" and r.json()["guard_reported"] is None
        assert wait_until(lambda: (c.id, "ResetGuard") in plat.guard_commands, 10), plat.guard_commands
        assert wait_until(lambda: guard_of(c.id).get("guard_reported") == "disarmed", 10), guard_of(c.id)
        listed = next(d for d in hub.get("/api/v1/devices?q=" + c.id)["devices"] if d["id"] == c.id)
        assert (listed["guard"], listed["guard_reported"]) == ("disarmed", "disarmed")

        assert plat.alarm(c.id, 5, 6, "区域入侵") is None and plat.alarms_held == 1  # the platform holds it
        plat.guard[c.id] = True  # a platform that ignored 撤防: its alarm comes, the gateway publishes none
        assert plat.alarm(c.id, 5, 6, "区域入侵") == 200
        assert wait_until(lambda: gw.alarms["disarmed"] == 1, 5), gw.alarms
        other = channels[0]  # a channel still armed: its alarm opens a case (the pipeline is alive)
        assert plat.alarm(other.id, 5, 6, "区域入侵") == 200
        assert wait_until(lambda: cases_of(other.id), 15)
        assert cases_of(c.id) == []

        plat.guard[c.id] = False
        r = hub.call("POST", f"/api/v1/devices/{c.id}/guard", json={"state": "armed"})
        assert r.status_code == 200 and r.json()["guard_reported"] is None, r.text
        assert wait_until(lambda: (c.id, "SetGuard") in plat.guard_commands, 10), plat.guard_commands
        assert wait_until(lambda: guard_of(c.id).get("guard_reported") == "armed", 10), guard_of(c.id)
        assert plat.guard[c.id] is True
        assert plat.alarm(c.id, 5, 6, "区域入侵") == 200
        assert wait_until(lambda: cases_of(c.id), 15)
        assert [cmd for d, cmd in plat.guard_commands if d == c.id] == ["ResetGuard", "SetGuard"]  # each once

        trail = hub.get("/api/v1/audit?action=device_guard", key=ADMIN)
        assert sorted((a["actor"], a["target"], a["outcome"]) for a in trail) == [
            ("ops-district", f"devices/{c.id}/guard", "ok")] * 2, trail
        assert hub.call("POST", f"/api/v1/devices/{c.id}/guard", key=VIEW01,  # a viewer may not
                        json={"state": "disarmed"}).status_code == 403
        assert hub.call("POST", "/api/v1/devices/no-such-device/guard", json={"state": "armed"}).status_code == 404
    finally:
        agent.stop()
        plat.close()
        gw.stop()
        hub.stop()


def test_a_channel_disarmed_for_a_window_is_armed_again_once_the_hub_asks_nothing():
    """The schedule (a maintenance window disarms a camera for its hours, `hub.fleet.guards`): when the window
    ends the hub lists nothing for the channel, and the gateway, which disarmed it, sends SetGuard; a command
    with no answer goes again after 10 s, not before; an answer to an SN never sent is refused."""
    now = [1000.0]
    cfg = GbGatewayConfig.model_validate({
        "sip": {"id": SERVER, "domain": DOMAIN, "host": "127.0.0.1", "port": 0},
        "devices": [{"id": PLATFORM, "grid": "grid-01", "password": "test-only-pw-1"}],
        "mqtt": {"host": "127.0.0.1", "port": 1, "protocol": "v311"}})
    gw = GbGateway(cfg, clock=lambda: now[0])
    sent: list[bytes] = []
    gw.request = lambda peer, method, body, **kw: sent.append(body)  # type: ignore[method-assign]
    channel = "44030500001320000001"
    gw.channel_owner[channel] = PLATFORM
    peer = gw.peers[PLATFORM]
    peer.presence.registered(now[0], 3600)

    def answer(sn: int, result: str = "OK") -> None:
        gw.guard_answered(peer, manscdp.parse(manscdp.write("Response", "DeviceControl", sn, channel,
                                                             [("Result", result)])))

    gw.apply_guards({channel: "disarmed", "not-mine": "disarmed"})
    assert len(sent) == 1 and b"<GuardCmd>ResetGuard</GuardCmd>" in sent[0] and channel.encode() in sent[0]
    assert gw.guard_wanted == {channel: "disarmed"}
    gw.apply_guards({channel: "disarmed"})  # read again before the answer: not sent twice
    assert len(sent) == 1
    now[0] += 11
    gw.apply_guards({channel: "disarmed"})  # no answer in 10 s: sent again
    assert len(sent) == 2
    answer(gw.seq - 1)  # the first SN was replaced by the second
    assert gw.refused["stale_control"] == 1
    answer(gw.seq)
    assert gw.guard_applied == {channel: "disarmed"}
    gw.apply_guards({channel: "disarmed"})
    assert len(sent) == 2  # confirmed: nothing more to send

    gw.apply_guards({})  # the window ended: the hub asks nothing of it
    assert len(sent) == 3 and b"<GuardCmd>SetGuard</GuardCmd>" in sent[2]
    assert gw.guard_wanted == {channel: "armed"}
    answer(gw.seq)
    assert gw.guard_applied == {channel: "armed"}
    gw.apply_guards({})
    assert len(sent) == 3 and gw.guard_wanted == {}
