"""FastAPI dependencies: settings and the lifespan-owned upstream clients, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from facade.core.config import Settings
from facade.core.errors import BatchTooLarge, UnsupportedMediaType
from facade.registry import RegistryClient
from facade.scoring import ScoringClient


def get_app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_scoring(request: Request) -> ScoringClient:
    return cast(ScoringClient, request.state.scoring)


def get_registry(request: Request) -> RegistryClient:
    return cast(RegistryClient, request.state.registry)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ScoringDep = Annotated[ScoringClient, Depends(get_scoring)]
RegistryDep = Annotated[RegistryClient, Depends(get_registry)]


def require_json(request: Request) -> None:
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
