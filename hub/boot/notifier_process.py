"""The notifier of a served hub in a child process: spawned (a fresh interpreter), niced, with its own database
connections, ended with its parent however the parent ends."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
from typing import Any

from hub.notify.notifier import Notifier


class NotifierProcess:
    """The notifier of a served hub, in a child process (spawned: a fresh interpreter) with its own database
    connections; `leading` is shared with the parent for its metrics."""

    def __init__(self, cfg: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.leading = ctx.Value("b", 0)
        self.proc = ctx.Process(target=_child, args=(cfg, self.leading, os.getpid()), name="gridwatch-hub-notifier",
                                daemon=True)

    def start(self) -> None:
        self.proc.start()

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(5)


def _child(cfg: Any, leading: Any, parent: int) -> None:  # pragma: no cover - runs in the child process
    from hub.boot.store import open_store
    from hub.policy.labels import load_labels

    try:  # end with the parent, however it ends (SIGKILL included): prctl(PR_SET_PDEATHSIG, SIGKILL)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass
    if os.getppid() != parent:
        return
    os.nice(10)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    store = open_store(cfg)
    n = Notifier(store, load_labels(cfg.labels), notify_path=cfg.notify, rosters_path=cfg.rosters)
    n.load()
    n.start()
    while not stop.wait(0.5):
        leading.value = 1 if n.leading else 0
        if os.getppid() != parent:
            break
    n.stop()
    store.engine.dispose()
