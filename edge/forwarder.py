"""The forwarder: batches from the outbox POSTed to the hub's `/api/v1/alerts`, removed only once acknowledged.

Requests and answers are the shared models of `gridwatch.core.alert`: an `AlertBatch` out, `AlertResults`
back, with status created / merged / duplicate / updated (taken) or rejected (invalid for good: moved to
the dead-letter table, never dropped). While the hub is down or refuses the key, the forwarder backs off
exponentially with full jitter. The outbox belongs to the agent, which closes it.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable

import httpx
from pydantic import ValidationError

from edge.outbox import Outbox, Pending
from gridwatch.core.alert import TAKEN, AlertBatch, AlertResults

logger = logging.getLogger(__name__)


class Forwarder:
    def __init__(self, outbox: Outbox, url: str, key: str | None, *, batch_size: int = 200,
                 timeout: float = 10.0, backoff_min: float = 0.5, backoff_max: float = 30.0,
                 on_latency: Callable[[float], None] | None = None,
                 on_error: Callable[[str], None] | None = None, ca_file: str | None = None) -> None:
        self.outbox = outbox
        self.endpoint = url.rstrip("/") + "/api/v1/alerts"
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.batch_size = self.max_batch = batch_size
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.on_latency = on_latency or (lambda s: None)
        self.on_error = on_error or (lambda r: None)
        # an https:// hub's certificate is checked against `ca_file` when given, else the system's trust store
        self._client = httpx.Client(timeout=timeout, verify=ssl.create_default_context(cafile=ca_file)
                                    if ca_file else True)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self.sent = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gridwatch-forwarder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._client.close()

    def notify(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                progressed = self.send_once()
            except Exception:  # a bug here must not end forwarding for good
                logger.exception("forwarder: unexpected error")
                progressed = False
                self._failures += 1
            if progressed:
                continue
            if self._failures:  # backing off: new alerts must not cut the pause short
                self._stop.wait(self._backoff())
            else:
                self._wake.wait(1.0)
            self._wake.clear()

    def _backoff(self) -> float:
        ceiling = min(self.backoff_max, self.backoff_min * (2 ** min(self._failures, 20)))
        return random.uniform(self.backoff_min / 2, ceiling)

    def send_once(self) -> bool:
        """Send one batch; True when it made progress (more may be waiting)."""
        batch = self.outbox.pending(self.batch_size)
        if not batch:
            self._failures = 0
            return False
        seqs = [seq for seq, _, _ in batch]
        try:
            body = AlertBatch(alerts=[a for _, _, a in batch]).model_dump_json()
            resp = self._client.post(self.endpoint, content=body,
                                     headers={**self.headers, "Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            return self._failed("unreachable", f"hub unreachable: {exc!r}", seqs)
        if resp.status_code in (401, 403):
            return self._failed("auth", f"hub refused the edge key ({resp.status_code}); alerts kept", seqs)
        if resp.status_code == 413 and self.batch_size > 1:
            self.batch_size = max(1, self.batch_size // 2)
            return True
        if resp.status_code in (400, 422) and len(batch) == 1:
            self.outbox.dead_letter(seqs[0], f"hub {resp.status_code}: {resp.text[:500]}")
            logger.error("forwarder: hub rejected alert %s: %s", batch[0][2].alert_id, resp.text[:200])
            return True
        if resp.status_code in (400, 422):
            self.batch_size = 1  # find the bad one by sending singly
            return True
        if resp.status_code >= 300:
            return self._failed(f"http_{resp.status_code}", f"hub answered {resp.status_code}", seqs)
        return self._taken(batch, resp)

    def _taken(self, batch: list[Pending], resp: httpx.Response) -> bool:
        try:
            results = AlertResults.model_validate_json(resp.content).results
        except ValidationError:
            return self._failed("bad_response", f"hub answer is not the expected JSON: {resp.text[:200]}", [])
        verdict = {(r.alert_id, r.state): r for r in results}
        acked, dead, now = [], 0, time.time()
        for seq, created, alert in batch:
            r = verdict.get(alert.key)
            if r is None:
                continue
            if r.status == "rejected":
                self.outbox.dead_letter(seq, r.error or "rejected by hub")
                dead += 1
            elif r.status in TAKEN:
                acked.append(seq)
                self.on_latency(now - created)
        self.outbox.ack(acked, now)
        self.sent += len(acked)
        self._failures = 0
        self.batch_size = min(self.max_batch, self.batch_size * 2)
        if len(acked) + dead < len(batch):
            logger.warning("forwarder: hub took %d of %d alerts; the rest stay queued", len(acked), len(batch))
        return bool(acked) or dead > 0

    def _failed(self, reason: str, text: str, seqs: list[int]) -> bool:
        self._failures += 1
        self.outbox.attempted(seqs)
        self.on_error(reason)
        if self._failures in (1, 10) or self._failures % 100 == 0:
            logger.warning("forwarder: %s (attempt %d)", text, self._failures)
        return False
