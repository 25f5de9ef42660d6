"""视频复核 on the SIP loop (issue 41): the looks the hub asks of this gateway's channels (read with the guards by
`guard_sync`). Each is a PTZ preset call (`DeviceControl` with `PTZCmd`, GB/T 28181-2016 A.2.3.1.2, the preset
instruction of A.3.5) sent to the channel, then, `look_settle` seconds later when the dome has turned, a
picture of the channel: a short INVITE and its first frame (`streams`), or the next frame of its stream when
it is pulled already. The picture goes to the look (`evidence`), which puts it on its case; a look that cannot
be answered with one (the platform is offline, no frame came) says why. A look for a channel this gateway
does not serve is another gateway's and is left alone."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from edge.gb28181.config import Stream
from edge.gb28181.evidence import SNAPSHOT_TIMEOUT, LookFailed
from edge.gb28181.streams import Streams
from gridwatch.core.gb28181 import manscdp

logger = logging.getLogger(__name__)
LOOK_FORGET = 600.0
"""Seconds a taken look's id is remembered (the hub offers a look for two minutes at most)."""


class Looks(Streams):
    def looks_read(self, looks: list[dict[str, Any]]) -> None:
        """From the hub thread (`guard_sync`): the looks waiting, handed to the SIP loop."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.take_looks, looks)

    def take_looks(self, looks: list[dict[str, Any]]) -> None:
        now = self.clock()
        self.looks_taken = {k: at for k, at in self.looks_taken.items() if now - at < LOOK_FORGET}
        for lk in looks:
            look, camera, preset = int(lk["id"]), str(lk["camera"]), lk.get("preset")
            owner = self.channel_owner.get(camera) or (camera if camera in self.peers else None)
            if look in self.looks_taken or owner is None or self.evidence is None:
                continue  # taken already, or another gateway's camera
            self.looks_taken[look] = now
            peer = self.peers[owner]
            if peer.addr is None or peer.presence.state != "online":
                self.evidence.put(LookFailed(look, f"平台 {owner} 离线 (platform offline)"))
                continue
            settle = 0.0
            if preset:
                self.seq += 1
                self.request(peer, "MESSAGE", manscdp.preset_call(self.seq, camera, int(preset)))
                self.handled["look_preset_sent"] += 1
                settle = self.cfg.look_settle
                logger.info("gb28181: look %d: %s turned to preset %s", look, camera, preset)
            assert self.loop is not None
            self.loop.call_later(settle, self.look_picture, look, owner, camera, now + settle)

    def look_picture(self, look: int, owner: str, camera: str, due: float) -> None:
        """The picture after the turn: the next frame of a pulled stream, else a short INVITE of its own; an alarm
        snapshot of the channel under way is waited for (its stream is the device's to give)."""
        assert self.evidence is not None and self.loop is not None
        now = self.clock()
        peer = self.peers[owner]
        playing = self.streams.get(camera)
        if playing is not None and playing.state == "playing":
            self.look_frames[camera] = (look, now)
            return
        if camera in self.snapshot_runs:
            if now - due < SNAPSHOT_TIMEOUT:
                self.loop.call_later(0.5, self.look_picture, look, owner, camera, due)
            else:
                self.evidence.put(LookFailed(look, f"通道 {camera} 忙 (an alarm snapshot held it)"))
            return
        if peer.addr is None or peer.presence.state != "online":
            self.evidence.put(LookFailed(look, f"平台 {owner} 离线 (platform offline)"))
            return
        self.handled["look_invited"] += 1
        spec = Stream(channel=camera, sample_every=0.1, width=960, jpeg_quality=85)
        asyncio.ensure_future(self.invite(peer, spec, now, snapshot=f"视频复核 look {look}", look=look))
