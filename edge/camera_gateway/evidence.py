"""Evidence with an RTSP/ONVIF camera's alarm (issue 41): what its stream showed, on the case the alarm opened.

With the gateway's `hub:`, the frames a streamed camera publishes are also kept as JPEG for `clip_before`
seconds. When one of its alarms starts, a worker waits `clip_after` seconds, then finds the camera's open case
(`GET /api/v1/cases?q=<camera>`, waited for up to 20 s: the agent's `event:` rule opens it from the same alarm)
and adds the first frame at or after the alarm as a photo (报警抓拍) and the frames from `clip_before` before
to `clip_after` after as an H.264 MP4 (libx264 through PyAV, at the frames' own times) as a clip (报警录像).
A camera alarmed again while its evidence is being taken gives no second one. Counted in `results`."""

from __future__ import annotations

import io
import logging
import ssl
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import av
import cv2
import httpx
import numpy as np

from edge.config import HubConfig

logger = logging.getLogger(__name__)
CASE_WAIT = 20.0


def mp4_of(frames: list[tuple[float, bytes]]) -> bytes:
    """JPEG frames (wall time, bytes) as an H.264 MP4 whose frames keep their times (variable rate)."""
    buf = io.BytesIO()
    t0 = frames[0][0]
    with av.open(buf, "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=30)
        st.pix_fmt, st.time_base = "yuv420p", Fraction(1, 1000)
        st.codec_context.options = {"preset": "veryfast", "tune": "zerolatency"}
        last = -1
        for ts, jpeg in frames:
            decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            if decoded is None:
                continue
            img = np.asarray(decoded, dtype=np.uint8)
            h, w = img.shape[:2]
            if last < 0:
                st.width, st.height = w - w % 2, h - h % 2
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: st.height, : st.width]), format="bgr24")
            frame.pts = max(last + 1, int((ts - t0) * 1000))
            frame.time_base = Fraction(1, 1000)
            last = frame.pts
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return buf.getvalue()


class AlarmEvidence:
    def __init__(self, hub: HubConfig, before: float, after: float, stop: threading.Event) -> None:
        self.before, self.after, self.stop = before, after, stop
        key = hub.secret()
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.base = hub.url.rstrip("/") + "/api/v1/cases"
        self.client = httpx.Client(timeout=hub.timeout, verify=ssl.create_default_context(
            cafile=str(hub.ca_file)) if hub.ca_file else True)
        self.frames: dict[str, deque[tuple[float, bytes]]] = {}
        self.busy: set[str] = set()
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="gridwatch-cam-evidence")
        self.results: Counter[str] = Counter()

    def frame(self, camera: str, image: Any, ts: float) -> None:
        """A published frame, kept as JPEG for `before` + `after` seconds."""
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            return
        with self.lock:
            q = self.frames.setdefault(camera, deque())
            q.append((ts, jpeg.tobytes()))
            while q and q[0][0] < ts - self.before - self.after - 5:
                q.popleft()

    def alarm(self, camera: str, at: float, what: str) -> None:
        with self.lock:
            if camera in self.busy:
                self.results["busy"] += 1
                return
            self.busy.add(camera)
        self.pool.submit(self._take, camera, at, what)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()

    def _take(self, camera: str, at: float, what: str) -> None:
        try:
            self.stop.wait(max(0.0, at + self.after - time.time()))
            with self.lock:
                frames = [f for f in self.frames.get(camera, ()) if at - self.before <= f[0] <= at + self.after]
            if not frames:
                self.results["no_frames"] += 1
                return
            case = self._case(camera)
            if case is None:
                self.results["no_case"] += 1
                return
            snap = next((f for f in frames if f[0] >= at), frames[-1])
            r = self.client.post(f"{self.base}/{case}/photos", params={"note": f"报警抓拍: {what}"}, content=snap[1],
                                 headers={**self.headers, "Content-Type": "image/jpeg"})
            self.results["photo_posted" if r.status_code == 201 else f"photo_refused_{r.status_code}"] += 1
            span = {"start": datetime.fromtimestamp(frames[0][0], UTC).isoformat(),
                    "end": datetime.fromtimestamp(frames[-1][0], UTC).isoformat()}
            r = self.client.post(f"{self.base}/{case}/clips", params={"note": f"报警录像: {what}", **span},
                                 content=mp4_of(frames), headers={**self.headers, "Content-Type": "video/mp4"})
            self.results["clip_posted" if r.status_code == 201 else f"clip_refused_{r.status_code}"] += 1
        except (httpx.HTTPError, av.FFmpegError, OSError, ValueError) as exc:
            self.results["failed"] += 1
            logger.warning("camera %s: alarm evidence not sent: %s", camera, exc)
        finally:
            with self.lock:
                self.busy.discard(camera)

    def _case(self, camera: str) -> str | None:
        end = time.monotonic() + CASE_WAIT
        while not self.stop.is_set():
            r = self.client.get(self.base, params={"q": camera, "status": "open,accepted,reported", "limit": 20},
                                headers=self.headers)
            if r.status_code == 200:
                for c in r.json().get("cases", []):
                    if c.get("device") == camera:
                        return str(c["id"])
            if time.monotonic() > end:
                return None
            self.stop.wait(0.5)
        return None
