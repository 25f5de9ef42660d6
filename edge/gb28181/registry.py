"""Catalog channels into the hub's device registry, off the SIP loop.

Channels wait in a map keyed by id (a newer state of a channel replaces an older one not yet sent) and go
to the hub's `POST /api/v1/devices/import` as CSV in batches of `BATCH`, the path an operator's sheet takes
(all rows of a batch or none, each checked like a typed-in device). While the hub is away or refuses, the
writer keeps them and tries again with back-off; nothing is dropped. Deletions (a catalog `DEL`) go to
`DELETE /api/v1/devices/{id}`.
"""

from __future__ import annotations

import csv
import io
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx

logger = logging.getLogger(__name__)
BATCH = 500
COLUMNS = ("id", "kind", "grid", "name", "lat", "lon", "address", "vendor", "model", "feed", "gateway", "notes")


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    grid: str
    name: str
    lat: float | None
    lon: float | None
    address: str
    vendor: str
    model: str
    gateway: str
    notes: str

    def row(self) -> list[str]:
        return [self.id, "camera", self.grid, self.name, "" if self.lat is None else f"{self.lat:.6f}",
                "" if self.lon is None else f"{self.lon:.6f}", self.address, self.vendor, self.model, "gb28181",
                self.gateway, self.notes]


class RegistryWriter:
    def __init__(self, url: str, key: str | None, *, timeout: float = 10.0, ca_file: str | None = None,
                 backoff_min: float = 0.5, backoff_max: float = 30.0,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.base = url.rstrip("/") + "/api/v1/devices"
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(timeout=timeout, verify=ssl.create_default_context(cafile=ca_file)
                                   if ca_file else True)
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.on_error = on_error or (lambda reason: None)
        self.pending: dict[str, Channel | None] = {}  # None: delete
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stop_event = threading.Event()
        self.written = 0
        self.thread: threading.Thread | None = None

    def put(self, channels: list[Channel]) -> None:
        with self.lock:
            for c in channels:
                self.pending[c.id] = c
        self.wake.set()

    def delete(self, ids: list[str]) -> None:
        with self.lock:
            for i in ids:
                self.pending[i] = None
        self.wake.set()

    @property
    def backlog(self) -> int:
        with self.lock:
            return len(self.pending)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="gridwatch-gb28181-registry", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=15)
        self.client.close()

    def _run(self) -> None:
        delay = self.backoff_min
        while not self.stop_event.is_set():
            self.wake.wait(timeout=1.0)
            self.wake.clear()
            while not self.stop_event.is_set():
                with self.lock:
                    batch = dict(list(self.pending.items())[:BATCH])
                if not batch:
                    break
                try:
                    self._send(batch)
                except (httpx.HTTPError, RuntimeError) as exc:
                    self.on_error(type(exc).__name__)
                    logger.warning("device registry: %s; %d channel(s) kept, again in %.1f s", exc, len(batch), delay)
                    self.stop_event.wait(delay)
                    delay = min(self.backoff_max, delay * 2)
                    continue
                delay = self.backoff_min
                with self.lock:
                    for k, v in batch.items():
                        if self.pending.get(k) is v:
                            del self.pending[k]

    def _send(self, batch: dict[str, Channel | None]) -> None:
        rows = [c for c in batch.values() if c is not None]
        if rows:
            out = io.StringIO()
            w = csv.writer(out)
            w.writerow(COLUMNS)
            w.writerows(c.row() for c in rows)
            r = self.client.post(self.base + "/import", content=out.getvalue().encode(),
                                 headers={**self.headers, "Content-Type": "text/csv"})
            if r.status_code != 200:
                raise RuntimeError(f"hub answered {r.status_code}: {r.text[:300]}")
            self.written += len(rows)
        for did in (k for k, v in batch.items() if v is None):
            r = self.client.delete(f"{self.base}/{did}", headers=self.headers)
            if r.status_code not in (204, 404):
                raise RuntimeError(f"hub answered {r.status_code} to deleting {did}: {r.text[:300]}")
