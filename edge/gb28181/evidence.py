"""Evidence with every alarm (issue 41): a snapshot of what the channel saw, on the case the alarm opened.

On an alarm (§9.4) the gateway INVITEs the channel for a moment (the same INVITE, PS over RTP and decoder as
`streams`), keeps the first decoded frame as a JPEG, hangs up (BYE) and hands it to `EvidencePoster`, which
finds the open case of that channel in the hub (`GET /api/v1/cases?q=<channel>`, the case the agent's
`event:` rule opened from the same alarm, waited for up to `SNAPSHOT_CASE_WAIT`) and adds the picture with
`POST /api/v1/cases/{id}/photos` (note 报警抓拍), the path a grid worker's photo takes. A channel already
snapshotted within `SNAPSHOT_EVERY` is not asked again (an alarm storm is one picture a channel a minute).
A 视频复核 look's picture (`looks`) goes to its look (`POST /api/v1/looks/{id}/snapshot`), which knows its
case; a look that cannot be answered with one says why (`…/failed`). Counted:
`gridwatch_gb28181_snapshots_total{result}`.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from queue import Empty, Queue

import httpx

logger = logging.getLogger(__name__)
SNAPSHOT_EVERY = 60.0
SNAPSHOT_CASE_WAIT = 20.0
SNAPSHOT_TIMEOUT = 8.0  # a channel that sends no frame this long after the INVITE: no snapshot
CLIP_SPEED = 4  # a=downloadspeed of an alarm's recording (§9.9): four times real time


@dataclass(frozen=True, slots=True)
class Snapshot:
    channel: str
    jpeg: bytes
    alarm_at: float  # epoch seconds
    description: str
    look: int | None = None
    """A 视频复核 look's picture (the hub's id of the look): sent to the look, which knows its case."""


@dataclass(frozen=True, slots=True)
class Clip:
    """The channel's own recording around an alarm (MP4), for the case the alarm opened."""

    channel: str
    mp4: bytes
    start: float  # epoch seconds
    end: float
    description: str


@dataclass(frozen=True, slots=True)
class LookFailed:
    look: int
    reason: str


class EvidencePoster:
    """A thread posting snapshots to the cases their alarms opened; results counted in `results`."""

    def __init__(self, url: str, key: str | None, *, timeout: float = 10.0, ca_file: str | None = None) -> None:
        self.base = url.rstrip("/") + "/api/v1/cases"
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(timeout=timeout, verify=ssl.create_default_context(cafile=ca_file)
                                   if ca_file else True)
        self.looks = url.rstrip("/") + "/api/v1/looks"
        self.queue: Queue[Snapshot | LookFailed | Clip] = Queue(maxsize=1000)
        self.results: Counter[str] = Counter()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def put(self, snap: Snapshot | LookFailed | Clip) -> None:
        try:
            self.queue.put_nowait(snap)
        except Exception:
            self.results["dropped"] += 1  # a thousand waiting: the hub is away; the case opened anyway

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="gridwatch-gb28181-evidence", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.client.close()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                snap = self.queue.get(timeout=0.5)
            except Empty:
                continue
            try:
                if isinstance(snap, Clip):
                    result = self._clip(snap)
                elif isinstance(snap, LookFailed) or snap.look:
                    result = self._look(snap)
                else:
                    result = self._post(snap)
                self.results[result] += 1
            except httpx.HTTPError as exc:
                self.results["hub_error"] += 1
                logger.warning("gb28181: %s not posted: %s", snap, exc)

    def _look(self, item: Snapshot | LookFailed) -> str:
        """A look's answer: its picture, or why there is none."""
        if isinstance(item, LookFailed):
            r = self.client.post(f"{self.looks}/{item.look}/failed", json={"reason": item.reason[:500]},
                                 headers=self.headers)
            result = "look_failed"
        else:
            r = self.client.post(f"{self.looks}/{item.look}/snapshot", content=item.jpeg,
                                 headers={**self.headers, "Content-Type": "image/jpeg"})
            result = "look_posted"
        if r.status_code != 200:
            logger.warning("gb28181: look %s's answer refused by the hub: %s %s", item.look, r.status_code,
                           r.text[:200])
            return f"look_refused_{r.status_code}"
        logger.info("gb28181: look %s answered (%s)", item.look, result)
        return result

    def _case(self, channel: str) -> str | None:
        r = self.client.get(self.base, params={"q": channel, "status": "open,accepted,reported", "limit": 20},
                            headers=self.headers)
        if r.status_code != 200:
            return None
        for c in r.json().get("cases", []):
            if c.get("device") == channel:
                return str(c["id"])
        return None

    def _waited_case(self, channel: str) -> str | None:
        end = time.monotonic() + SNAPSHOT_CASE_WAIT
        case = self._case(channel)
        while case is None and time.monotonic() < end and not self.stop_event.is_set():
            self.stop_event.wait(0.5)  # the agent's rule opens it from the same alarm, moments later
            case = self._case(channel)
        return case

    def _clip(self, clip: Clip) -> str:
        case = self._waited_case(clip.channel)
        if case is None:
            return "clip_no_case"
        stamp = {"start": datetime.fromtimestamp(clip.start, UTC).isoformat(),
                 "end": datetime.fromtimestamp(clip.end, UTC).isoformat()}
        note = f"报警录像 (GB/T 28181){': ' + clip.description[:80] if clip.description else ''}"
        r = self.client.post(f"{self.base}/{case}/clips", params={"note": note, **stamp}, content=clip.mp4,
                             headers={**self.headers, "Content-Type": "video/mp4"})
        if r.status_code != 201:
            logger.warning("gb28181: clip of %s refused by the hub: %s %s", clip.channel, r.status_code, r.text[:200])
            return f"clip_refused_{r.status_code}"
        logger.info("gb28181: clip of %s (%d bytes) added to case %s", clip.channel, len(clip.mp4), case)
        return "clip_posted"

    def _post(self, snap: Snapshot) -> str:
        case = self._waited_case(snap.channel)
        if case is None:
            logger.info("gb28181: no open case of %s for its snapshot (no rule for the alarm?)", snap.channel)
            return "no_case"
        note = f"报警抓拍 (GB/T 28181){': ' + snap.description[:80] if snap.description else ''}"
        r = self.client.post(f"{self.base}/{case}/photos", params={"note": note}, content=snap.jpeg,
                             headers={**self.headers, "Content-Type": "image/jpeg"})
        if r.status_code != 201:
            logger.warning("gb28181: snapshot of %s refused by the hub: %s %s", snap.channel, r.status_code,
                           r.text[:200])
            return f"refused_{r.status_code}"
        logger.info("gb28181: snapshot of %s added to case %s", snap.channel, case)
        return "posted"
