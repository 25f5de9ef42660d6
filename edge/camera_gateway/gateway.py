"""The camera gateway process: one thread per camera stream and per alarm source, one MQTT connection,
one watchdog, one metrics endpoint. A camera that fails is retried with back-off; it never stops the
others.

Published (the native contract of DESIGN §3, what the agent already decodes):
- frames: JPEG on `gw/{grid}/camera/{id}/frame`, `ts` (ms) and `seq` as MQTT v5 user properties (the JSON
  envelope on 3.1.1), QoS 0: a frame that cannot be delivered now is worth nothing later;
- liveness: retained `online` / `offline` on `…/status`, QoS 1: `offline` once no frame came for
  `offline_after` (a cut cable, a stopped server, a stream that never opened), `online` with the first
  frame again;
- the camera's own alarms: `{"ts", "seq", "event", "state", "zone"}` on `…/event`, QoS 1.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import av
import cv2
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edge.camera_gateway.alarms import CameraAlarm
from edge.camera_gateway.config import Camera, CameraGatewayConfig
from edge.camera_gateway.evidence import AlarmEvidence
from edge.camera_gateway.looks import LookTaker
from edge.camera_gateway.onvif_events import OnvifEvents
from edge.camera_gateway.sources import AlarmStream
from edge.feeds.values import device_id
from edge.frames.liveness import Liveness
from edge.frames.publish import publish_frame
from edge.frames.stream import Sampler, StreamStats, read_stream
from edge.metrics import serve
from gridwatch.core.mqttlink import connect, make_client

logger = logging.getLogger(__name__)


@dataclass
class CameraRun:
    """What the gateway knows of one camera."""

    cam: Camera
    liveness: Liveness
    stats: StreamStats = field(default_factory=StreamStats)
    alarms: list[AlarmStream] = field(default_factory=list)
    seq: int = 0
    opened: int = 0
    ended: bool = False  # a file without `loop` played to its end
    fps_window: tuple[float, int, int] = (0.0, 0, 0)  # (time, decoded, published) at the last rate reading
    fps_in: float = 0.0
    fps_out: float = 0.0
    last: tuple[float, Any] | None = None  # (wall time, image) of the last frame published (视频复核's fallback)


class CameraGateway:
    def __init__(self, cfg: CameraGatewayConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.stop_event = threading.Event()
        now = clock()
        self.cams = {c.id: CameraRun(c, Liveness(c.offline_after, now)) for c in cfg.cameras}
        for run in self.cams.values():
            run.alarms = [(OnvifEvents if src.kind == "onvif" else AlarmStream)(
                src, self._alarm_sink(run), cfg.reconnect, cfg.open_timeout) for src in run.cam.alarms]
        m = cfg.mqtt
        self.v5 = m.protocol == "v5"
        self.client = make_client(m, cfg.client_id)
        self.client.max_queued_messages_set(10_000)  # while the broker is away: statuses and alarms wait, frames go
        self.threads: list[threading.Thread] = []
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self))
        self._server: Any = None
        self.metrics_port: int | None = None
        self.lock = threading.Lock()
        self.looks = LookTaker(cfg, self.frame_after, self.stop_event) if cfg.hub is not None else None
        self.evidence = (AlarmEvidence(cfg.hub, cfg.clip_before, cfg.clip_after, self.stop_event)
                         if cfg.hub is not None and cfg.alarm_evidence else None)

    def frame_after(self, camera: str, after: float, wait: float) -> bytes | None:
        """A JPEG of the camera's first frame published at or after `after` (wall time), waiting up to `wait`."""
        run = self.cams[camera]
        end = time.monotonic() + wait + max(0.0, after - time.time())
        while time.monotonic() < end and not self.stop_event.is_set():
            last = run.last
            if last is not None and last[0] >= after:
                ok, jpeg = cv2.imencode(".jpg", last[1], [cv2.IMWRITE_JPEG_QUALITY, 85])
                return jpeg.tobytes() if ok else None
            self.stop_event.wait(0.1)
        return None

    # ---- life ----

    def start(self) -> None:
        m = self.cfg.mqtt
        connect(self.client, m)
        self.client.loop_start()
        for run in self.cams.values():
            if run.cam.url:
                self._thread(f"gridwatch-cam-{run.cam.id}", partial(self._run_camera, run))
            for a in run.alarms:
                self._thread(f"gridwatch-alarms-{run.cam.id}", partial(a.run, self.stop_event))
        self._thread("gridwatch-camera-watchdog", self._watchdog)
        if self.looks is not None:
            self._thread("gridwatch-camera-looks", self.looks.run)
        if self.cfg.metrics_port is not None:
            self._server = serve(self.registry, "127.0.0.1", self.cfg.metrics_port, self.health)
            self.metrics_port = int(self._server.server_port)

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=self.cfg.open_timeout + 2)
        if self.evidence is not None:
            self.evidence.close()
        self.client.loop_stop()
        self.client.disconnect()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def health(self) -> tuple[bool, str]:
        dead = [t.name for t in self.threads if not t.is_alive() and not self.stop_event.is_set()
                and not self._finished(t.name)]
        return (not dead, "ok" if not dead else f"threads ended: {', '.join(dead)}")

    def _finished(self, name: str) -> bool:
        run = self.cams.get(name.removeprefix("gridwatch-cam-"))
        return run is not None and run.ended

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self.threads.append(t)

    # ---- streams ----

    def _run_camera(self, run: CameraRun) -> None:
        cam, backoff = run.cam, self.cfg.reconnect
        delay = backoff.min
        assert cam.url is not None
        while not self.stop_event.is_set():
            got = 0
            try:
                sampler = Sampler(cam.sample_every, cam.keyframes)
                for sample in read_stream(cam.url, sampler, cam.width, self.stop_event, run.stats,
                                          rtsp_transport=cam.rtsp_transport, timeout=self.cfg.open_timeout,
                                          realtime=cam.realtime, on_open=lambda: self._opened(run)):
                    self._publish_frame(run, sample.image, sample.ts)
                    got += 1
                    delay = backoff.min
                if self.stop_event.is_set():
                    return
                if "://" not in cam.url:
                    if cam.loop and got:
                        continue  # playback: from the start again, no back-off
                    logger.info("camera %s: %s played to its end", cam.id, cam.url)
                    run.ended = True
                    return
                if got == 0:
                    logger.warning("camera %s: stream %s ended before any frame", cam.id, cam.url)
            except (av.FFmpegError, OSError) as exc:
                logger.warning("camera %s: %s: %s; again in %.0f s", cam.id, cam.url, exc, delay)
            except Exception:  # one camera's surprise must not end its thread: log it and go on retrying
                logger.exception("camera %s: unexpected failure; again in %.0f s", cam.id, delay)
            with run.stats.lock:
                run.stats.reconnects += 1
            if self.stop_event.wait(delay if got == 0 else backoff.min):
                return
            delay = min(delay * 2, backoff.max) if got == 0 else backoff.min

    def _opened(self, run: CameraRun) -> None:
        run.opened += 1
        logger.info("camera %s: stream open (%s)", run.cam.id, run.cam.url)

    def _publish_frame(self, run: CameraRun, image: Any, ts: float) -> None:
        if not publish_frame(self.client, self.v5, self._topic(run.cam, "frame"), image, run.cam.jpeg_quality, ts,
                             run.seq + 1):
            run.stats.decode_errors += 1
            return
        run.seq += 1
        run.stats.published += 1
        run.last = (time.time(), image)
        if self.evidence is not None:
            self.evidence.frame(run.cam.id, image, run.last[0])
        with self.lock:
            change = run.liveness.frame(self.clock())
        if change is not None:
            self._status(run, change)

    # ---- liveness and alarms ----

    def _watchdog(self) -> None:
        while not self.stop_event.wait(1.0):
            now = self.clock()
            for run in self.cams.values():
                if run.cam.url:
                    with self.lock:
                        change = run.liveness.check(now)
                    if change is not None:
                        self._status(run, change)
                    self._rates(run, now)
                for a in run.alarms:
                    a.expire()

    def _rates(self, run: CameraRun, now: float) -> None:
        t0, d0, p0 = run.fps_window
        if now - t0 >= 5.0:
            s = run.stats
            if t0 > 0:
                run.fps_in, run.fps_out = (s.decoded - d0) / (now - t0), (s.published - p0) / (now - t0)
            run.fps_window = (now, s.decoded, s.published)

    def _status(self, run: CameraRun, state: str) -> None:
        logger.info("camera %s: %s", run.cam.id, state)
        self.client.publish(self._topic(run.cam, "status"), state, qos=1, retain=True)

    def _alarm_sink(self, run: CameraRun) -> Callable[[CameraAlarm], None]:
        def emit(a: CameraAlarm) -> None:
            run.seq += 1
            zone = device_id(a.zone, "alarm", "zone") if a.zone else ""
            body = {"ts": int((a.ts or self.clock()) * 1000), "seq": run.seq, "event": a.event, "state": a.state,
                    "zone": zone, "code": a.code}
            logger.info("camera %s: alarm %s %s %s (%s)", run.cam.id, a.event, a.state, zone or "-", a.code)
            self.client.publish(self._topic(run.cam, "event"), json.dumps(body), qos=1)
            if self.evidence is not None and a.state == "start" and run.cam.url:
                self.evidence.alarm(run.cam.id, time.time(), f"{a.event}{' ' + zone if zone else ''}")
        return emit

    def _topic(self, cam: Camera, leaf: str) -> str:
        return f"{self.cfg.mqtt.topic_root}/{cam.grid}/camera/{cam.id}/{leaf}"


class _Collector(Collector):
    """Per-camera figures read at scrape time."""

    def __init__(self, gw: CameraGateway) -> None:
        self.gw = gw

    def collect(self) -> Iterator[Any]:
        lbl = ["camera"]
        fams = {
            "packets": CounterMetricFamily("gridwatch_camera_packets", "Stream packets read", labels=lbl),
            "decoded": CounterMetricFamily("gridwatch_camera_frames_decoded", "Frames decoded", labels=lbl),
            "published": CounterMetricFamily("gridwatch_camera_frames_published", "Frames published", labels=lbl),
            "reconnects": CounterMetricFamily("gridwatch_camera_reconnects", "Stream reopened after it failed or "
                                              "ended", labels=lbl),
            "decode_errors": CounterMetricFamily("gridwatch_camera_decode_errors", "Packets the decoder refused",
                                                 labels=lbl),
        }
        fps_in = GaugeMetricFamily("gridwatch_camera_fps_in", "Frames decoded per second (last 5 s)", labels=lbl)
        fps_out = GaugeMetricFamily("gridwatch_camera_fps_published", "Frames published per second (last 5 s)",
                                    labels=lbl)
        online = GaugeMetricFamily("gridwatch_camera_online", "1 while frames arrive", labels=lbl)
        alarms = CounterMetricFamily("gridwatch_camera_alarms", "Camera alarm edges published", labels=["camera",
                                                                                                      "event"])
        alarm_err = CounterMetricFamily("gridwatch_camera_alarm_format_errors", "Alarm parts not as documented",
                                        labels=lbl)
        for cid, run in self.gw.cams.items():
            s = run.stats
            for name, fam in fams.items():
                fam.add_metric([cid], getattr(s, name))
            fps_in.add_metric([cid], run.fps_in)
            fps_out.add_metric([cid], run.fps_out)
            online.add_metric([cid], 1.0 if run.liveness.state == "online" else 0.0)
            errs = 0
            for a in run.alarms:
                errs += a.stats.format_errors
                for ev, n in a.stats.by_event.items():
                    alarms.add_metric([cid, ev], n)
            alarm_err.add_metric([cid], errs)
        yield from fams.values()
        yield from (fps_in, fps_out, online, alarms, alarm_err)
        if self.gw.looks is not None:
            looks = CounterMetricFamily("gridwatch_camera_looks", "视频复核 looks taken, by how they ended",
                                        labels=["result"])
            for result, n in sorted(self.gw.looks.results.items()):
                looks.add_metric([result], n)
            yield looks
