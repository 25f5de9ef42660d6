"""Rotating JSONL capture of received messages (DESIGN §4), the input of `gridwatch rules backtest`."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import IO, Any

from edge.message import Message
from gridwatch.core.alert import from_epoch, iso_ms


def capture_line(msg: Message) -> dict[str, Any]:
    line: dict[str, Any] = {"topic": msg.topic, "received_at": iso_ms(from_epoch(msg.received_at))}
    try:
        line["payload"] = json.loads(msg.payload)
    except (UnicodeDecodeError, ValueError, RecursionError):
        try:
            text = msg.payload.decode("utf-8")
            line["payload"] = text  # e.g. a status "online"
        except UnicodeDecodeError:
            line["payload_b64"] = base64.b64encode(msg.payload).decode("ascii")
    if msg.properties:
        line["properties"] = msg.properties
    return line


class Recorder:
    def __init__(self, path: str | Path, max_bytes: int, backups: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.backups = max_bytes, backups
        self._fh: IO[str] = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, msg: Message) -> None:
        self._fh.write(json.dumps(capture_line(msg), separators=(",", ":"), ensure_ascii=False) + "\n")
        if self._fh.tell() >= self.max_bytes:
            self._rotate()

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def _rotate(self) -> None:
        self._fh.close()
        for i in range(self.backups - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.backups > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
