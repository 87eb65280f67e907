"""Prometheus scrape endpoint, outside /api/v1 and the OpenAPI document."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from facade.service import PredictionService

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Every metric of this process in the Prometheus text format; the drift gauges are computed now."""
    # NB: getattr: an app answering without its lifespan (a TestClient not entered) has no service.
    service: PredictionService | None = getattr(request.state, "service", None)
    if service is not None:
        await service.drift.refresh()
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
