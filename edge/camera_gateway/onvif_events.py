"""ONVIF events (PullPoint) as camera alarms, with onvif-zeep-async, the ONVIF client Home Assistant keeps.

One source runs in its own gateway thread with its own asyncio loop: find the device's event service
(`GetServices`, else `GetCapabilities`), `CreatePullPointSubscription` (renewed by the library's manager
before it ends), then `PullMessages` in a loop, each notification read by `edge.camera_gateway.alarms.onvif_alarm`
and handed on like the HTTP vendors' alarms (the same channel/code filters, the same start/stop edges).
WS-Security `UsernameToken` digests are the library's. A refused password, a fault or a lost subscription
ends the attempt; `AlarmStream.run` tries again with back-off.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from typing import Any
from urllib.parse import urlsplit

from edge.camera_gateway.alarms import AlarmFormatError, CameraAlarm, OnvifMessage, onvif_alarm
from edge.camera_gateway.sources import AlarmStream

logger = logging.getLogger(__name__)

PULL_WAIT = 2.0  # seconds a PullMessages waits for news: also how soon a stopping gateway is heard
SUBSCRIPTION = dt.timedelta(seconds=60)  # renewed by the library's manager before it runs out


class OnvifEvents(AlarmStream):
    """One ONVIF device's (or NVR's) event service; `url` is the device's base URL (http://host[:port])."""

    def _once(self, stop: threading.Event) -> None:
        try:
            asyncio.run(self._pull(stop))
        except AlarmFormatError:
            raise
        except Exception as exc:  # zeep faults, ONVIFError, aiohttp and timeouts: one failed attempt
            raise OSError(f"ONVIF {type(exc).__name__}: {exc}") from exc

    async def _pull(self, stop: threading.Event) -> None:
        from onvif import ONVIFCamera  # imported here: a gateway without ONVIF cameras does not load zeep

        u = urlsplit(self.src.url)
        host = u.hostname or "127.0.0.1"
        port = u.port or (443 if u.scheme == "https" else 80)
        cam = ONVIFCamera(host, port, self.src.username, self.src.secret(), no_cache=True)
        manager: Any = None
        lost = asyncio.Event()
        try:
            await asyncio.wait_for(cam.update_xaddrs(), self.timeout)
            manager = await asyncio.wait_for(cam.create_pullpoint_manager(SUBSCRIPTION, lost.set), self.timeout)
            service = manager.get_service()
            self.stats.connected = True
            logger.info("alarms %s: ONVIF pull-point subscription made", self.src.url)
            while not stop.is_set() and not lost.is_set():
                got = await asyncio.wait_for(
                    service.PullMessages({"MessageLimit": 100, "Timeout": dt.timedelta(seconds=PULL_WAIT)}),
                    PULL_WAIT + self.timeout)
                for msg in getattr(got, "NotificationMessage", None) or []:
                    self.read(msg)
            if lost.is_set():
                raise OSError("subscription lost (not renewed in time)")
        finally:
            if manager is not None:
                try:
                    await asyncio.wait_for(manager.shutdown(), 2.0)
                except Exception:  # Unsubscribe is a courtesy: the subscription ends on its own
                    logger.debug("alarms %s: unsubscribe failed", self.src.url, exc_info=True)
            await cam.close()

    def read(self, msg: Any) -> None:
        """One `wsnt:NotificationMessage` as zeep gives it: a topic (`Topic._value_1`) and the `tt:Message`
        (`Message._value_1`, typed by zeep from the ONVIF schema)."""
        self.stats.parts += 1
        try:
            topic = getattr(getattr(msg, "Topic", None), "_value_1", None)
            element = getattr(getattr(msg, "Message", None), "_value_1", None)
            if not isinstance(topic, str) or element is None:
                raise AlarmFormatError("ONVIF notification without a topic or a message")
            alarm: CameraAlarm | None = onvif_alarm(topic, OnvifMessage.from_zeep(element))
        except AlarmFormatError as exc:
            self.stats.format_errors += 1
            logger.warning("alarms %s: %s", self.src.url, exc)
            return
        if alarm is not None:
            self.forward([alarm])
