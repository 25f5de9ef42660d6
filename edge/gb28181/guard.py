"""布防/撤防 on the SIP loop (GB/T 28181-2016 §9.3, A.2.3.1.3): the hub's wishes (`guard_sync.GuardSync`) sent
as `DeviceControl` guard commands (`SetGuard`, `ResetGuard`) to the platform that owns the device or channel,
each sent again after `GUARD_RETRY` seconds until the device answers `<Result>OK</Result>` (A.2.6.2); a
confirmation goes back to the hub. While the hub asks a channel or its platform to be disarmed, the gateway
publishes none of its alarms (`alarm_intake`), whatever the device does."""

from __future__ import annotations

import logging

from edge.gb28181.alarm_intake import AlarmIntake
from edge.gb28181.base import Peer
from gridwatch.core.gb28181 import manscdp

logger = logging.getLogger(__name__)
GUARD_RETRY = 10.0
"""Seconds before a guard command with no answer is sent again."""


class Guards(AlarmIntake):
    def guards_read(self, wanted: dict[str, str]) -> None:
        """From the guard thread (`guard_sync`): the hub's wishes, handed to the SIP loop."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.apply_guards, wanted)

    def apply_guards(self, wanted: dict[str, str]) -> None:
        """The hub's wishes (device or channel id -> armed/disarmed): the ones this gateway serves are kept (the
        alarm intake reads them) and sent to the devices that have not confirmed them; a device this gateway
        disarmed that the hub no longer asks anything of is armed again."""
        served = {d: s for d, s in wanted.items() if d in self.peers or d in self.channel_owner}
        disarmed_here = {d for d, s in self.guard_applied.items() if s == "disarmed"} | {
            d for d, s, _ in self.guard_asked.values() if s == "disarmed"}
        for did in disarmed_here - set(served):  # the hub asks nothing of it now (a window ended): armed again
            served[did] = "armed"
        self.guard_wanted = served
        now = self.clock()
        for did, state in self.guard_wanted.items():
            if self.guard_applied.get(did) == state:
                continue
            if any(d == did and s == state and now - at < GUARD_RETRY for d, s, at in self.guard_asked.values()):
                continue
            peer = self.peers.get(did) or self.peers.get(self.channel_owner.get(did, ""))
            if peer is None or not peer.presence.registered_now:
                continue  # sent once it registers (the next reading)
            self.seq += 1
            self.guard_asked = {sn: a for sn, a in self.guard_asked.items() if a[0] != did}
            self.guard_asked[self.seq] = (did, state, now)
            self.request(peer, "MESSAGE", manscdp.guard_control(self.seq, did, state == "armed"))
            self.handled[f"guard_{state}_sent"] += 1
            logger.info("gb28181: %s asked to be %s (SN %d)", did, state, self.seq)

    def guard_answered(self, peer: Peer, body: manscdp.Body) -> None:
        asked = self.guard_asked.get(body.sn)
        if asked is None or asked[0] != body.device_id:
            self.refuse("stale_control", peer.addr, f"DeviceControl answer SN {body.sn} for {body.device_id}")
            return
        del self.guard_asked[body.sn]
        did, state, _ = asked
        if body.text("Result").strip().upper() != "OK":
            self.handled["guard_failed"] += 1
            logger.warning("gb28181: %s did not take %s: %s", did, state, body.text("Result")[:80])
            return
        self.guard_applied[did] = state
        self.handled[f"guard_{state}_confirmed"] += 1
        if self.guard_sync is not None:
            self.guard_sync.reported(did, state)
