"""An alarm's recorded clip (issue 41): the channel's own recording around the alarm, on the case it opened.

`clip_after` seconds after an alarm (so the recording holds them), the gateway asks the platform what it
recorded of the channel from `clip_before` seconds before the alarm to `clip_after` after (`RecordInfo`,
GB/T 28181-2016 §9.7, A.2.4.5). When a recording covers that span, it INVITEs a download of it (§9.9:
`s=Download`, `u=<channel>:0`, `t=<start> <end>`, `a=downloadspeed:4`, a history SSRC), takes the MPEG-PS as
for live video, remuxes it into MP4 without decoding (`media.StreamRun.record`), and hands it to `evidence`,
which adds it to the channel's open case (`POST /api/v1/cases/{id}/clips`). The download ends when the
platform says so (`MediaStatus` NotifyType 121, §9.9.3) or when it has had four times its length; then BYE.
One clip at a time per channel; counted in `gridwatch_gb28181_snapshots_total{result="clip_…"}`."""

from __future__ import annotations

import asyncio
import logging

from edge.gb28181.base import Peer
from edge.gb28181.config import Stream
from edge.gb28181.evidence import CLIP_SPEED, Clip
from edge.gb28181.looks import Looks
from edge.gb28181.media import StreamRun
from gridwatch.core.gb28181 import manscdp

logger = logging.getLogger(__name__)
CLIP_GRACE = 30.0
"""Seconds past a download's expected length (its span over `CLIP_SPEED`) before it is ended anyway."""


class Clips(Looks):
    def clip_later(self, peer: Peer, channel: str, now: float, description: str) -> None:
        if not self.cfg.clips or self.evidence is None or self.loop is None:
            return
        self.loop.call_later(self.cfg.clip_after + 1.0, self.ask_records, peer.dev.id, channel, now, description)

    def ask_records(self, owner: str, channel: str, alarm_at: float, description: str) -> None:
        assert self.evidence is not None
        peer = self.peers[owner]
        if peer.addr is None or peer.presence.state != "online":
            self.evidence.results["clip_offline"] += 1
            return
        if channel in self.clip_runs:
            self.evidence.results["clip_busy"] += 1  # an earlier alarm's clip still downloading: it covers this
            return
        self.seq += 1
        self.clip_asked = {sn: a for sn, a in self.clip_asked.items() if self.clock() - a[1] < 600}
        self.clip_asked[self.seq] = (channel, alarm_at, description)
        self.request(peer, "MESSAGE", manscdp.record_info(self.seq, channel, alarm_at - self.cfg.clip_before,
                                                          alarm_at + self.cfg.clip_after))
        self.handled["record_info_sent"] += 1

    def records_answered(self, peer: Peer, body: manscdp.Body) -> None:
        asked = self.clip_asked.pop(body.sn, None)
        if asked is None or asked[0] != body.device_id or self.evidence is None:
            self.refuse("stale_query", peer.addr, f"RecordInfo answer SN {body.sn} for {body.device_id}")
            return
        channel, alarm_at, description = asked
        start, end = alarm_at - self.cfg.clip_before, alarm_at + self.cfg.clip_after
        spans = [(s, e) for s, e in manscdp.record_spans(body) if s < end and e > start]
        if not spans:
            self.evidence.results["clip_no_recording"] += 1
            logger.info("gb28181: %s recorded nothing around its alarm", channel)
            return
        span = (max(start, min(s for s, _ in spans)), min(end, max(e for _, e in spans)))
        self.clip_notes[channel] = description
        spec = Stream(channel=channel, sample_every=1.0, width=640, jpeg_quality=80)
        asyncio.ensure_future(self.invite(peer, spec, self.clock(), clip=span))

    def media_status(self, peer: Peer, body: manscdp.Body) -> None:
        """§9.9.3: NotifyType 121, the platform sent the whole download."""
        run = self.clip_runs.get(body.device_id)
        if body.text("NotifyType") == "121" and run is not None:
            run.pipe.close()  # the remux ends with what came; `clip_recorded` says BYE

    def clip_recorded(self, run: StreamRun, mp4: bytes | None) -> None:
        """In the clip's thread: the MP4 to the case, then hang up."""
        if self.evidence is not None and run.clip is not None:
            if mp4:
                note = self.clip_notes.get(run.channel, "")
                self.evidence.put(Clip(run.channel, mp4, run.clip[0], run.clip[1], note))
            else:
                self.evidence.results["clip_empty"] += 1
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.end_stream, run, "recording taken")

    def snapshot_timeouts(self, now: float) -> None:
        super().snapshot_timeouts(now)
        for run in list(self.clip_runs.values()):
            if run.clip is not None and now - run.asked_at > (run.clip[1] - run.clip[0]) / CLIP_SPEED + CLIP_GRACE:
                run.pipe.close()  # what came is kept
