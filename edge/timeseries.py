"""Readings to a time-series database through the InfluxDB v2 write API (influxdb-client, batching).

Line protocol strings rather than Point objects (6x cheaper, DESIGN §10). Writes are asynchronous:
a slow or failing database never blocks rule evaluation; failures are counted and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from influxdb_client import InfluxDBClient, WriteOptions, WritePrecision
from influxdb_client.client.write_api import WriteType

from edge.config import InfluxConfig
from edge.message import Event

logger = logging.getLogger(__name__)


def _tag(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def line_of(ev: Event) -> str | None:
    ts_ms = int(ev.ts * 1000)
    tags = f"grid={_tag(ev.grid)},device={_tag(ev.device)}"
    if ev.kind == "sensor":
        fields = ",".join(f"{k}={v!r}" for k, v in ev.metrics.items())
    elif ev.kind == "fence":
        tags += f",zone={_tag(ev.zone or '-')}"
        fields = f'event="{ev.event}"'
    else:
        return None
    return f"{ev.kind},{tags} {fields} {ts_ms}"


class TimeSeriesWriter:
    def __init__(self, cfg: InfluxConfig, on_error: Callable[[], None]) -> None:
        self.on_error = on_error
        self.client = InfluxDBClient(url=cfg.url, token=cfg.token or "none", org=cfg.org)
        self.bucket, self.org = cfg.bucket, cfg.org
        self.write_api = self.client.write_api(
            write_options=WriteOptions(write_type=WriteType.batching, batch_size=cfg.batch_size,
                                       flush_interval=int(cfg.flush_interval * 1000), max_retries=2,
                                       retry_interval=1000, max_retry_time=10000),
            error_callback=self._failed)
        self._errors = 0

    def _failed(self, conf: Any, data: Any, exc: Exception) -> None:
        self._errors += 1
        self.on_error()
        if self._errors in (1, 10) or self._errors % 100 == 0:
            logger.warning("timeseries: write failed (%d so far): %s", self._errors, exc)

    def write(self, ev: Event) -> None:
        line = line_of(ev)
        if line is None:
            return
        try:
            self.write_api.write(bucket=self.bucket, org=self.org, record=line, write_precision=WritePrecision.MS)  # type: ignore[arg-type]  # a str constant
        except Exception as exc:  # never let the database stop rule evaluation
            self._failed(None, line, exc)

    def close(self) -> None:
        try:
            self.write_api.close()
        finally:
            self.client.close()
