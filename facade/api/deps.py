"""FastAPI dependencies: settings, the prediction service and limits, as Annotated aliases.

Who may call a route (and how much) is ``facade.security.require_scope``.

NB: all ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per
dependency per request, which showed in the hot path's profile."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request

from facade.core.config import Settings
from facade.core.lifecycle import Lifecycle
from facade.core.limits import InFlightLimiter
from facade.errors import BatchTooLarge, Overloaded, UnsupportedMediaType
from facade.metrics import PREDICTIONS_SHED
from facade.service import PredictionService
from facade.upstream.registry import RegistryClient


async def get_app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_service(request: Request) -> PredictionService:
    return cast(PredictionService, request.state.service)


async def get_registry(request: Request) -> RegistryClient:
    return cast(RegistryClient, request.state.service.registry)


async def get_lifecycle(request: Request) -> Lifecycle:
    return cast(Lifecycle, request.app.state.lifecycle)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ServiceDep = Annotated[PredictionService, Depends(get_service)]
RegistryDep = Annotated[RegistryClient, Depends(get_registry)]


async def require_json(request: Request) -> None:
    """Refuse a body not sent as application/json (or a +json type) with 415."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType("Send the request body as application/json.")


async def limit_batch_size(request: Request, settings: SettingsDep) -> None:
    """Refuse a batch over MAX_BATCH_SIZE with 413 before any of its rows is validated.

    NB: dependencies run after FastAPI has parsed the JSON body (and cached it on the request)
    but before the body is validated, so an oversized batch costs no per-row validation.
    """
    if not await request.body():
        return
    body = await request.json()
    applications = body.get("applications") if isinstance(body, dict) else None
    if isinstance(applications, list) and len(applications) > settings.MAX_BATCH_SIZE:
        raise BatchTooLarge(settings.MAX_BATCH_SIZE)


async def limit_in_flight(request: Request) -> AsyncIterator[None]:
    """Admit the request while fewer than MAX_IN_FLIGHT predictions are in flight; 503 at once otherwise."""
    limiter = cast(InFlightLimiter, request.app.state.limiter)
    if not limiter.try_acquire():
        PREDICTIONS_SHED.inc()
        raise Overloaded(f"{limiter.limit} predictions are already in flight; retry shortly.")
    try:
        yield
    finally:
        limiter.release()
