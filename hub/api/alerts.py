"""`POST /api/v1/alerts`: batches from edge agents, idempotent on (alert_id, state)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hub.api.auth import Principal, require

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class AlertBatch(BaseModel):
    alerts: list[dict[str, Any]] = Field(max_length=5000)


@router.post("")
def post_alerts(batch: AlertBatch, request: Request,
                who: Annotated[Principal, Depends(require("edge", "admin"))]) -> JSONResponse:
    """One result per alert: created / merged / updated / duplicate, or rejected with the error."""
    results = request.app.state.store.ingest(batch.alerts, actor=who.name)
    for r in results:
        request.app.state.metrics.alerts.labels(r["status"]).inc()
    # results are plain JSON values already: skip FastAPI's generic encoder on the hot path
    return JSONResponse({"results": results})
