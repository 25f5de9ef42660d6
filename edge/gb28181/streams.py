"""Streams: the listed channels INVITEd (SDP s=Play, PS/90000, y= SSRC), PS over RTP taken on UDP or TCP
passive, demuxed and sampled (`media.StreamRun`), frames published; BYE when a stream ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import threading
from functools import partial
from typing import Any

import cv2

from edge.frames.liveness import Liveness
from edge.frames.publish import publish_frame
from edge.frames.stream import Sample
from edge.gb28181.base import STREAM_RETRY, UDP_BUFFER, Peer
from edge.gb28181.config import Stream
from edge.gb28181.evidence import CLIP_SPEED, SNAPSHOT_EVERY, SNAPSHOT_TIMEOUT, LookFailed, Snapshot
from edge.gb28181.guard import Guards
from edge.gb28181.media import StreamRun
from gridwatch.core.gb28181 import rtp
from gridwatch.core.gb28181.sip import SipMessage

logger = logging.getLogger(__name__)


class Streams(Guards):
    def pull_streams(self, now: float) -> None:
        """Ask for each listed channel's stream whose device is online and that is not playing; a stream whose
        frames stopped is `offline`, hung up and asked for again."""
        for spec in self.cfg.streams:
            run = self.streams.get(spec.channel)
            if run is not None and run.state == "playing":
                change = run.liveness.check(now)
                if change is not None:
                    self._publish(self._topic(run.grid, run.channel, "status"), change.encode(), retain=True)
                    self.end_stream(run, "no frames")
                continue
            if run is not None and now - run.asked_at < STREAM_RETRY:  # asked a moment ago (or just ended)
                continue
            owner = self.channel_owner.get(spec.channel) or (spec.channel if spec.channel in self.peers else None)
            peer = self.peers.get(owner) if owner else None
            if peer is None or peer.presence.state != "online" or peer.addr is None:
                continue
            if run is not None:
                self.end_stream(run, "again")
            asyncio.ensure_future(self.invite(peer, spec, now))

    def snapshot(self, peer: Peer, channel: str, now: float, description: str) -> None:
        """An alarm's snapshot (`evidence`): the channel INVITEd for its first frame, at most one a channel per
        `SNAPSHOT_EVERY`; a channel whose stream is pulled already gives no second one."""
        if self.evidence is None or peer.addr is None or peer.presence.state != "online":
            return
        if now - self.snapped.get(channel, float("-inf")) < SNAPSHOT_EVERY or channel in self.snapshot_runs:
            self.evidence.results["skipped"] += 1
            return
        playing = self.streams.get(channel)
        if playing is not None and playing.state == "playing":
            self.evidence.results["skipped"] += 1
            return
        self.snapped[channel] = now
        spec = Stream(channel=channel, sample_every=0.1, width=960, jpeg_quality=85)
        asyncio.ensure_future(self.invite(peer, spec, now, snapshot=description))

    def snapshot_timeouts(self, now: float) -> None:
        for run in [r for r in self.snapshot_runs.values() if now - r.asked_at > SNAPSHOT_TIMEOUT]:
            if self.evidence is not None:
                self.evidence.results["no_frame"] += 1
                if run.look is not None:
                    self.evidence.put(LookFailed(run.look, f"通道 {run.channel} 未送来画面 (no frame in "
                                                           f"{SNAPSHOT_TIMEOUT:.0f} s)"))
            self.end_stream(run, "no frame for the snapshot")
        for channel, (look, asked_at) in list(self.look_frames.items()):
            if now - asked_at > SNAPSHOT_TIMEOUT and self.look_frames.pop(channel, None) is not None:
                if self.evidence is not None:
                    self.evidence.put(LookFailed(look, f"通道 {channel} 的视频流未送来画面 (no frame in "
                                                       f"{SNAPSHOT_TIMEOUT:.0f} s)"))

    async def invite(self, peer: Peer, spec: Stream, now: float, snapshot: str | None = None,
                     look: int | None = None, clip: tuple[float, float] | None = None) -> None:
        """INVITE a channel: its live stream (`s=Play`), a snapshot's first frame, or with `clip` a download of its
        recording between two times (§9.9: `s=Download`, `u=<channel>:0`, `t=<start> <end>`, a history SSRC)."""
        assert self.loop is not None and peer.addr is not None
        self.ssrc_serial += 1
        grid = peer.channels.get(spec.channel, peer.dev.grid)
        run = StreamRun(spec.channel, grid, peer.dev.id,
                        rtp.ssrc_for(self.cfg.sip.domain, self.ssrc_serial, history=clip is not None),
                        spec.sample_every, spec.width, spec.jpeg_quality, Liveness(spec.offline_after, now),
                        source_host=peer.addr[0], asked_at=now, state="inviting", snapshot=snapshot,
                        alarm_at=now, look=look, clip=clip)
        if clip is not None:
            self.clip_runs[spec.channel] = run
        elif snapshot is None:
            self.streams[spec.channel] = run
        else:
            self.snapshot_runs[spec.channel] = run
        if spec.transport == "udp":
            run.transport, _ = await self.loop.create_datagram_endpoint(lambda: _Rtp(self, run),
                                                                         local_addr=(self.cfg.sip.host, 0))
            run.rtp_port = run.transport.get_extra_info("sockname")[1]
            with contextlib.suppress(OSError):  # a 1080p keyframe is some 200 packets at once
                run.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER)
        else:
            run.transport = await asyncio.start_server(partial(self._rtp_tcp, run), self.cfg.sip.host, 0)
            run.rtp_port = run.transport.sockets[0].getsockname()[1]
        if clip is None:
            sdp = rtp.write_sdp(self.cfg.sip.id, self.here, run.rtp_port, run.ssrc, transport=spec.transport,
                                setup="passive")
        else:
            sdp = rtp.write_sdp(self.cfg.sip.id, self.here, run.rtp_port, run.ssrc, transport=spec.transport,
                                setup="passive", session="Download", uri=f"{spec.channel}:0", speed=CLIP_SPEED,
                                times=(int(clip[0]), int(clip[1])))
        msg = self.request(peer, "INVITE", sdp, target=spec.channel, content_type="APPLICATION/SDP", headers=[
            ("Contact", f"<sip:{self.cfg.sip.id}@{self.here}:{self.port}>"),
            ("Subject", f"{spec.channel}:{run.ssrc},{self.cfg.sip.id}:0")])  # §8.1.2.2: sender:ssrc,receiver:0
        if msg is None:
            self.end_stream(run, "no address")
            return
        run.invite, run.call_id = msg, msg.call_id
        self.invites[msg.call_id] = run
        logger.info("gb28181: INVITE %s (SSRC %s, RTP %s port %d)", spec.channel, run.ssrc, spec.transport,
                    run.rtp_port)

    def invite_answered(self, run: StreamRun, msg: SipMessage) -> None:
        assert msg.status is not None
        _, method = msg.cseq
        if method != "INVITE" or msg.status < 200:
            return
        if msg.status >= 300:
            self.refuse("invite_refused", None, f"channel {run.channel}: {msg.status} {msg.phrase}")
            self.end_stream(run, f"refused {msg.status}")
            return
        if run.state != "inviting":  # a 200 again (UDP retransmission): ACK again, nothing more
            self._ack(run, msg)
            return
        try:
            answer = rtp.read_sdp(msg.body)
        except rtp.RtpError as exc:
            self.refuse(exc.reason, None, f"channel {run.channel}: {exc}")
            self.end_stream(run, "bad SDP")
            return
        if answer.ssrc and answer.ssrc != run.ssrc:  # the device chose its own (§附录F allows it): that one counts
            run.ssrc = answer.ssrc
        run.answer = msg
        self._ack(run, msg)
        run.state = "playing"
        if run.clip is not None:
            run.thread = threading.Thread(target=run.record, args=(self.clip_recorded,), daemon=True,
                                          name=f"gridwatch-gb-rec-{run.channel[-6:]}")
        else:
            take = self._snapshot_sample if run.snapshot is not None else self._publish_sample
            run.thread = threading.Thread(target=run.run, args=(take,), daemon=True,
                                          name=f"gridwatch-gb-{run.channel[-6:]}")
        run.thread.start()

    def _dialog(self, run: StreamRun, method: str) -> SipMessage | None:
        """ACK or BYE in the INVITE's dialog (RFC 3261 §12.2.1.1, §13.2.2.4, §15.1.1)."""
        peer = self.peers.get(run.device)
        if peer is None or peer.addr is None or run.invite is None or run.answer is None:
            return None
        n, _ = run.invite.cseq
        if method == "BYE":
            peer.cseq += 1
            n = peer.cseq
        msg = SipMessage(method=method, uri=run.invite.uri)
        msg.headers = [("Via", f"SIP/2.0/{peer.transport.upper()} {self.here}:{self.port};rport;branch=z9hG4bK"
                               f"{secrets.token_hex(8)}"),
                       ("From", run.invite.get("From") or ""), ("To", run.answer.get("To") or ""),
                       ("Call-ID", run.call_id), ("CSeq", f"{n} {method}"), ("Max-Forwards", "70")]
        self.send(msg, peer.addr, peer.transport, peer.writer)
        return msg

    def _ack(self, run: StreamRun, answer: SipMessage) -> None:
        run.answer = answer
        self._dialog(run, "ACK")

    def end_stream(self, run: StreamRun, why: str) -> None:
        if run.state == "playing":
            self._dialog(run, "BYE")
        run.state = "ended"
        run.stop.set()
        run.pipe.close()
        if run.transport is not None:
            run.transport.close()
            run.transport = None
        self.invites.pop(run.call_id, None)
        if run.snapshot is not None and self.snapshot_runs.get(run.channel) is run:
            del self.snapshot_runs[run.channel]
        if run.clip is not None and self.clip_runs.get(run.channel) is run:
            del self.clip_runs[run.channel]
        logger.info("gb28181: stream of %s ended (%s)", run.channel, why)

    async def _rtp_tcp(self, run: StreamRun, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("peername")[0]
        if host != run.source_host:
            self.refuse("rtp_wrong_source", (host, 0), f"channel {run.channel}: TCP RTP from {host}")
            writer.close()
            return
        deframer = rtp.TcpDeframer()
        try:
            while data := await reader.read(65_536):
                for packet in deframer.feed(data):
                    run.take(packet, host, self._refuse_media)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def _refuse_media(self, reason: str, detail: str) -> None:
        self.refuse(reason, None, detail)

    def _publish_sample(self, run: StreamRun, sample: Sample) -> None:
        """In the stream's thread: a sampled frame as the RTSP path publishes it."""
        if not publish_frame(self.client, self.v5, self._topic(run.grid, run.channel, "frame"), sample.image,
                             run.jpeg_quality, sample.ts, run.seq + 1):
            run.stats.decode_errors += 1
            return
        run.seq += 1
        run.stats.published += 1
        waiting = self.look_frames.pop(run.channel, None)  # a look at a channel already pulled: this frame
        if waiting is not None and self.evidence is not None:
            ok, jpeg = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, 85])
            self.evidence.put(Snapshot(run.channel, jpeg.tobytes(), sample.ts, "", look=waiting[0]) if ok
                              else LookFailed(waiting[0], f"通道 {run.channel} 的画面无法编码"))
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._frame_seen, run)

    def _snapshot_sample(self, run: StreamRun, sample: Sample) -> None:
        """In the stream's thread: the first frame of an alarm's snapshot to the hub, then hang up."""
        if run.seq or self.evidence is None:
            return
        ok, jpeg = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, run.jpeg_quality])
        if not ok:
            run.stats.decode_errors += 1
            return
        run.seq = 1
        self.evidence.put(Snapshot(run.channel, jpeg.tobytes(), run.alarm_at, run.snapshot or "", look=run.look))
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.end_stream, run, "snapshot taken")

    def clip_recorded(self, run: StreamRun, mp4: bytes | None) -> None:
        """In the clip's thread: the MP4 (`clips`)."""

    def _frame_seen(self, run: StreamRun) -> None:
        change = run.liveness.frame(self.clock())
        if change is not None:
            self._publish(self._topic(run.grid, run.channel, "status"), change.encode(), retain=True)


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self, gw: Streams, run: StreamRun) -> None:
        self.gw, self.run = gw, run

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.run.take(data, addr[0], self.gw._refuse_media)
