"""GET /metrics: Prometheus exposition of this process's monitor.

Auth: `Authorization: Bearer <CRON_SECRET>` (Prometheus: `authorization: {credentials: ...}` in
the scrape config), unless METRICS_PUBLIC=true for scrapers on a private network."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from postpilot.api.deps import Credentials, RuntimeDep
from postpilot.api.routes.performance import require_operator

router = APIRouter(tags=["monitor"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}},
        401: {"description": "Needs `Authorization: Bearer <CRON_SECRET>`."},
        503: {"description": "CRON_SECRET is not set (and METRICS_PUBLIC is false)."},
    },
)
async def metrics(runtime: RuntimeDep, credentials: Credentials) -> Response:
    """Counters and histograms of the passes run in this process, per-cache hits and misses, DB
    connections, webhook counts and the alerts firing at the last evaluation."""
    if not runtime.settings.METRICS_PUBLIC:
        require_operator(runtime, credentials)
    return Response(runtime.monitor.prometheus.exposition(), media_type=CONTENT_TYPE_LATEST)
