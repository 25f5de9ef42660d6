"""`POST /api/v1/alerts`: batches from edge agents, idempotent on (alert_id, state).

The body is the shared `AlertBatch` model, so OpenAPI documents the alert and a malformed alert gets a
422 that names the field (the forwarder then sends one by one and sets the bad one aside)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gridwatch.core.alert import AlertBatch, AlertResults
from hub.api.deps import EdgeCaller, MetricsDep, StoreDep
from hub.ingest import ingest

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


@router.post("", response_model=AlertResults)
def post_alerts(batch: AlertBatch, store: StoreDep, metrics: MetricsDep, who: EdgeCaller) -> Response:
    """One result per alert, in order: created / merged / updated / duplicate."""
    results = ingest(store, batch.alerts, actor=who.name)
    for r in results:
        metrics.alerts.labels(r.status).inc()
    # serialised once by pydantic, not again by FastAPI's generic encoder on the hot path
    return Response(AlertResults(results=results).model_dump_json(), media_type="application/json")
