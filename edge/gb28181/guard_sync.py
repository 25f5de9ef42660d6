"""The hub's 布防/撤防 and 视频复核 looks for the gateway's devices, off the SIP loop: what is asked is read every
`guard_poll` seconds (`GET /api/v1/devices/guards`, `GET /api/v1/looks`) and handed to the loop
(`Guards.apply_guards`, `Looks.take_looks`); what a device
confirmed goes back (`POST /api/v1/devices/{id}/guard/reported`), kept and sent again while the hub is away.
A confirmation the hub answers 409 to (it has since asked the other state) is dropped: the next reading
brings the new wish."""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import httpx

logger = logging.getLogger(__name__)


class GuardSync:
    def __init__(self, url: str, key: str | None, apply: Callable[[dict[str, str]], None], *, poll: float,
                 timeout: float = 10.0, ca_file: str | None = None,
                 looks: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        self.base = url.rstrip("/") + "/api/v1/devices"
        self.looks_url = url.rstrip("/") + "/api/v1/looks"
        self.looks = looks
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(timeout=timeout, verify=ssl.create_default_context(cafile=ca_file)
                                   if ca_file else True)
        self.apply, self.poll = apply, poll
        self.reports: dict[str, str] = {}  # device id -> the state it confirmed, not yet told to the hub
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.readings = 0
        self.failures = 0

    def reported(self, device_id: str, state: str) -> None:
        with self.lock:
            self.reports[device_id] = state
        self.wake.set()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="gridwatch-gb28181-guard", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=15)
        self.client.close()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._tell()
                r = self.client.get(self.base + "/guards", headers=self.headers)
                if r.status_code != 200:
                    raise RuntimeError(f"hub answered {r.status_code}: {r.text[:200]}")
                self.apply({g["id"]: g["wanted"] for g in r.json()["guards"] if g["wanted"]})
                if self.looks is not None:
                    r = self.client.get(self.looks_url, headers=self.headers)
                    if r.status_code != 200:
                        raise RuntimeError(f"hub answered {r.status_code} to the looks: {r.text[:200]}")
                    if waiting := r.json()["looks"]:
                        self.looks(waiting)
                self.readings += 1
            except (httpx.HTTPError, RuntimeError, ValueError, KeyError, TypeError) as exc:
                self.failures += 1
                logger.warning("gb28181 guard: %s; again in %.1f s", exc, self.poll)
            self.wake.wait(self.poll)
            self.wake.clear()

    def _tell(self) -> None:
        with self.lock:
            todo = dict(self.reports)
        for did, state in todo.items():
            r = self.client.post(f"{self.base}/{did}/guard/reported", json={"state": state}, headers=self.headers)
            if r.status_code not in (200, 404, 409):
                raise RuntimeError(f"hub answered {r.status_code} to {did}'s {state}: {r.text[:200]}")
            with self.lock:
                if self.reports.get(did) == state:
                    del self.reports[did]
