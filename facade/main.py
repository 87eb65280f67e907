"""Assembles the app: settings, lifespan-owned upstream clients, middleware, error handlers, routes.

Run with ``uvicorn --factory facade.main:create_app`` (or ``python -m facade``). Importing this
module builds nothing; ``facade.main:app`` builds the default app on first access.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, TypedDict

import httpx
from fastapi import FastAPI

from facade.api.main import api_router
from facade.api.routes import metrics
from facade.core.config import Settings, get_settings
from facade.core.errors import PROBLEM_MEDIA_TYPE, install_error_handlers
from facade.core.middleware import MetricsMiddleware, UnhandledErrorMiddleware
from facade.registry import RegistryClient
from facade.scoring import ScoringClient

API_PREFIX = "/api/v1"


class State(TypedDict):
    scoring: ScoringClient
    registry: RegistryClient


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[State]:
    """Own one pooled HTTP client per upstream for the life of the app, closed at shutdown."""
    settings: Settings = app.state.settings
    timeout = httpx.Timeout(
        connect=settings.UPSTREAM_CONNECT_TIMEOUT,
        read=settings.UPSTREAM_READ_TIMEOUT,
        write=settings.UPSTREAM_READ_TIMEOUT,
        pool=settings.UPSTREAM_POOL_TIMEOUT,
    )
    # NB: trust_env=False: both upstreams are internal services; an HTTP(S)_PROXY meant for
    # outbound traffic must not capture them.
    async with (
        httpx.AsyncClient(base_url=settings.SCORING_URL, timeout=timeout, trust_env=False) as scoring_http,
        httpx.AsyncClient(
            base_url=settings.MLFLOW_TRACKING_URI, timeout=timeout, trust_env=False
        ) as registry_http,
    ):
        yield {
            "scoring": ScoringClient(scoring_http),
            "registry": RegistryClient(registry_http, settings.MODEL_NAME),
        }


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the facade app; ``settings`` defaults to the environment's."""
    settings = settings or get_settings()
    logging.getLogger("facade").setLevel("DEBUG" if settings.DEBUG else settings.LOG_LEVEL)
    # NB: DEBUG is deliberately not passed to FastAPI: Starlette's debug mode answers 500s
    # with a traceback, which can quote applicant data.
    app = FastAPI(
        title=settings.APP_NAME,
        version=settings.APP_VERSION,
        description="Credit decisions from the registered credit-score model served by MLflow.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    # NB: the last added middleware is the outermost: metrics also see the 500s produced inside.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(MetricsMiddleware)
    install_error_handlers(app)
    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(metrics.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_problem_media_type(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _with_problem_media_type(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare error responses as application/problem+json, which is what the handlers send.

    NB: FastAPI files every ``responses=`` model under the route's own media type (JSON).
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if int(status) >= 400 and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return schema


@lru_cache
def _default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> FastAPI:
    # NB: `uvicorn facade.main:app` works, yet importing this module reads no environment.
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
