"""The agent's inbound queue between paho's network thread and the rule worker: bounded (a full queue blocks
paho's thread, so TCP back-pressures the broker), and for camera frames one slot per camera (the newest
frame wins: overload never queues a camera's backlog; a replaced frame is acknowledged and counted)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from edge.message import Message


class Inbox:
    def __init__(self, size: int, stop: threading.Event, on_frame_dropped: Callable[[], None]) -> None:
        # a str on the queue is a frame topic: its newest message waits in `frames` (one slot per camera)
        self.queue: queue.Queue[Message | str] = queue.Queue(maxsize=size)
        self.frames: dict[str, Message] = {}
        self._lock = threading.Lock()
        self._stop = stop
        self._dropped = on_frame_dropped

    def put(self, msg: Message) -> None:
        """From paho's thread: queue the message, blocking while the queue is full (until stopped)."""
        item: Message | str = msg
        if msg.topic.endswith("/frame"):
            with self._lock:
                old = self.frames.get(msg.topic)
                self.frames[msg.topic] = msg
            if old is not None:
                self._dropped()
                if old.ack is not None:
                    old.ack()
                return
            item = msg.topic
        try:
            self.queue.put_nowait(item)
            return
        except queue.Full:  # the worker is behind: block paho's thread, so TCP back-pressures the broker
            pass
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def take(self, batch_max: int, wait: float) -> list[Message]:
        """From the worker: up to `batch_max` messages, waiting at most `wait` seconds for the first."""
        batch: list[Message] = []
        try:
            batch.append(self._message(self.queue.get(timeout=wait)))
            while len(batch) < batch_max:
                batch.append(self._message(self.queue.get_nowait()))
        except queue.Empty:
            pass
        return batch

    def _message(self, item: Message | str) -> Message:
        if isinstance(item, str):
            with self._lock:
                return self.frames.pop(item)
        return item
