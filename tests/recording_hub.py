"""A small FastAPI app that records what edge agents POST to /api/v1/alerts (stands in for the hub in edge tests).

It runs for real under uvicorn on a loopback port and can be stopped and started again on the same port
to play a hub outage.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException

from simulators.services import free_port, wait_port


class RecordingHub:
    def __init__(self, key: str = "test-edge-key", port: int | None = None) -> None:
        self.key = key
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.received: list[dict[str, Any]] = []  # every alert body of every request, duplicates included
        self.unique: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests = 0
        self.heartbeats: list[dict[str, Any]] = []
        self.reject: set[str] = set()  # alert ids this hub refuses as invalid (status "rejected")
        self.unprocessable: set[str] = set()  # alert ids that make the whole request answer 422
        self.lock = threading.Lock()
        self.app = self._app()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/api/v1/fleet/heartbeat")
        def heartbeat(body: dict[str, Any], authorization: str | None = Header(None)) -> dict[str, Any]:
            if authorization != f"Bearer {self.key}":
                raise HTTPException(401, "bad key")
            with self.lock:
                self.heartbeats.append(body)
            return {"ok": True}

        @app.post("/api/v1/alerts")
        def alerts(body: dict[str, Any], authorization: str | None = Header(None)) -> dict[str, Any]:
            if authorization != f"Bearer {self.key}":
                raise HTTPException(401, "bad key")
            results = []
            bad = [i for i, a in enumerate(body.get("alerts", [])) if a.get("alert_id") in self.unprocessable]
            if bad:
                raise HTTPException(422, [{"loc": ["body", "alerts", bad[0], "severity"], "msg": "bad"}])
            with self.lock:
                self.requests += 1
                for a in body.get("alerts", []):
                    self.received.append(a)
                    k = (a["alert_id"], a["state"])
                    if a["alert_id"] in self.reject:
                        results.append({**dict(zip(("alert_id", "state"), k, strict=True)), "status": "rejected",
                                        "error": "severity: unknown value"})
                        continue
                    status = "duplicate" if k in self.unique else "created"
                    self.unique.setdefault(k, a)
                    results.append({"alert_id": a["alert_id"], "state": a["state"], "status": status})
            return {"results": results}

        return app

    def start(self) -> RecordingHub:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = None

    def duplicates(self) -> dict[tuple[str, str], int]:
        counts = Counter((a["alert_id"], a["state"]) for a in self.received)
        return {k: n for k, n in counts.items() if n > 1}

    def wait_for(self, n: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.unique) >= n:
                return True
            time.sleep(0.05)
        return len(self.unique) >= n
