"""视频复核 for RTSP/ONVIF cameras (issue 41): the looks the hub asks of this gateway's cameras
(`GET /api/v1/looks`, read every `look_poll` seconds), each taken in a worker: with onvif-zeep-async (the ONVIF
client the events use), the camera's media profile (`GetProfiles`), `GotoPreset` on its PTZ service, then until
`GetStatus` says it stopped (at most `look_settle` seconds; all of them for a dome that does not say), then its
snapshot (`GetSnapshotUri`, fetched with HTTP digest by the library). A camera with no `ptz:` (or whose
snapshot fails) gives the first frame of its stream sampled after the settle, when it is streamed. The picture
goes to `POST /api/v1/looks/{id}/snapshot` (the hub puts it on the case), or why there is none to `…/failed`.
A look for a camera this gateway does not have is another's."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx

from edge.camera_gateway.config import Camera, CameraGatewayConfig, Ptz

logger = logging.getLogger(__name__)
LOOK_FORGET = 600.0  # seconds a taken look's id is remembered (the hub offers one for two minutes)
FRAME_WAIT = 5.0  # seconds to wait for a stream's frame after the settle
SETTLE_POLL = 0.3  # seconds between PTZ GetStatus readings while the dome turns
SETTLE_AFTER = 0.3  # seconds for focus and exposure once it says it stopped


async def onvif_look(ptz: Ptz, preset: int | None, settle: float, timeout: float) -> bytes | None:
    """Turn to the preset, wait, and fetch the snapshot; None when the camera has no snapshot URI."""
    from onvif import ONVIFCamera  # imported here: a gateway without ONVIF cameras does not load zeep

    u = urlsplit(ptz.url)
    cam = ONVIFCamera(u.hostname or "127.0.0.1", u.port or (443 if u.scheme == "https" else 80), ptz.username,
                      ptz.secret(), no_cache=True)
    try:
        await asyncio.wait_for(cam.update_xaddrs(), timeout)
        media = await cam.create_media_service()
        token = ptz.profile or (await asyncio.wait_for(media.GetProfiles(), timeout))[0].token
        if preset is not None:
            service = await cam.create_ptz_service()
            await asyncio.wait_for(service.GotoPreset({"ProfileToken": token, "PresetToken": str(preset)}), timeout)
            await _settled(service, token, settle, timeout)
        jpeg: bytes | None = await cam.get_snapshot(token, timeout=timeout)
        return jpeg
    finally:
        await cam.close()


async def onvif_ready(ptz: Ptz, timeout: float) -> None:
    """Reach the camera's media and PTZ services once: zeep reads their WSDLs the first time (3-4 s of a core),
    at start rather than inside the first look's ten seconds."""
    from onvif import ONVIFCamera

    u = urlsplit(ptz.url)
    cam = ONVIFCamera(u.hostname or "127.0.0.1", u.port or (443 if u.scheme == "https" else 80), ptz.username,
                      ptz.secret(), no_cache=True)
    try:
        await asyncio.wait_for(cam.update_xaddrs(), timeout)
        await cam.create_media_service()
        await cam.create_ptz_service()
    finally:
        await cam.close()


async def _settled(service: Any, token: str, settle: float, timeout: float) -> None:
    """Until the dome says it stopped (PTZ `GetStatus`, `MoveStatus` IDLE, ONVIF PTZ Service §5.3.3), at most
    `settle` seconds; a camera that does not say is given the whole `settle`."""
    end = time.monotonic() + settle
    await asyncio.sleep(min(SETTLE_POLL, settle))
    while time.monotonic() < end:
        try:
            status = await asyncio.wait_for(service.GetStatus({"ProfileToken": token}), timeout)
            move = getattr(status, "MoveStatus", None)
            states = {getattr(move, "PanTilt", None), getattr(move, "Zoom", None)} - {None}
        except Exception:  # GetStatus is optional for a device: wait out the settle instead
            states = set()
        if not states:
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            return
        if states <= {"IDLE"}:
            await asyncio.sleep(min(SETTLE_AFTER, max(0.0, end - time.monotonic())))
            return
        await asyncio.sleep(min(SETTLE_POLL, max(0.0, end - time.monotonic())))


class LookTaker:
    """The thread reading looks, and the workers taking them; `results` counts how each ended."""

    def __init__(self, cfg: CameraGatewayConfig, frame_after: Callable[[str, float, float], bytes | None],
                 stop: threading.Event) -> None:
        assert cfg.hub is not None
        self.cfg, self.hub, self.frame_after, self.stop = cfg, cfg.hub, frame_after, stop
        self.cams: dict[str, Camera] = {c.id: c for c in cfg.cameras}
        key = self.hub.secret()
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.base = self.hub.url.rstrip("/") + "/api/v1/looks"
        self.client = httpx.Client(timeout=self.hub.timeout, verify=ssl.create_default_context(
            cafile=str(self.hub.ca_file)) if self.hub.ca_file else True)
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="gridwatch-look")
        self.taken: dict[int, float] = {}
        self.results: Counter[str] = Counter()
        self.ready = threading.Event()  # the cameras' ONVIF services reached (or tried) once: looks are read

    def run(self) -> None:
        for cam in self.cams.values():
            if cam.ptz is not None and not self.stop.is_set():
                try:
                    asyncio.run(onvif_ready(cam.ptz, self.cfg.open_timeout))
                except Exception as exc:  # away now: its looks will try again, and say why if they fail
                    logger.warning("look: camera %s's ONVIF services not reached: %s", cam.id, exc)
        self.ready.set()
        while not self.stop.is_set():
            try:
                r = self.client.get(self.base, headers=self.headers)
                if r.status_code != 200:
                    raise RuntimeError(f"hub answered {r.status_code}: {r.text[:200]}")
                self._take(r.json()["looks"])
            except (httpx.HTTPError, RuntimeError, ValueError, KeyError, TypeError) as exc:
                self.results["hub_error"] += 1
                logger.warning("looks: %s; again in %.1f s", exc, self.cfg.look_poll)
            self.stop.wait(self.cfg.look_poll)
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()

    def _take(self, looks: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        self.taken = {k: at for k, at in self.taken.items() if now - at < LOOK_FORGET}
        for lk in looks:
            look, camera = int(lk["id"]), str(lk["camera"])
            if look in self.taken or camera not in self.cams:
                continue
            self.taken[look] = now
            self.pool.submit(self._look, look, self.cams[camera], lk.get("preset"))

    def _look(self, look: int, cam: Camera, preset: int | None) -> None:
        why = ""
        jpeg: bytes | None = None
        turned_at = time.time()
        if cam.ptz is not None:
            try:
                jpeg = asyncio.run(onvif_look(cam.ptz, preset, self.cfg.look_settle, self.cfg.open_timeout))
                why = "no snapshot URI" if jpeg is None else ""
            except Exception as exc:  # zeep faults, ONVIFError, aiohttp and timeouts: this look fails, say why
                why = f"ONVIF {type(exc).__name__}: {str(exc)[:200]}"
                logger.warning("look %d at %s: %s", look, cam.id, why)
        elif preset is not None:
            why = f"摄像机 {cam.id} 未配置云台 (no ptz: in the gateway's config)"
        if jpeg is None and cam.url:
            jpeg = self.frame_after(cam.id, turned_at + (self.cfg.look_settle if preset else 0.0), FRAME_WAIT)
        try:
            if jpeg is not None:
                r = self.client.post(f"{self.base}/{look}/snapshot", content=jpeg,
                                     headers={**self.headers, "Content-Type": "image/jpeg"})
                result = "posted" if r.status_code == 200 else f"refused_{r.status_code}"
            else:
                r = self.client.post(f"{self.base}/{look}/failed", headers=self.headers,
                                     json={"reason": why or f"摄像机 {cam.id} 没有画面 (no frame)"})
                result = "failed" if r.status_code == 200 else f"refused_{r.status_code}"
        except httpx.HTTPError as exc:
            result = "hub_error"
            logger.warning("look %d at %s: answer not sent: %s", look, cam.id, exc)
        self.results[result] += 1
        logger.info("look %d at %s (preset %s): %s", look, cam.id, preset, result)
