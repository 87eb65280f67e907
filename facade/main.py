"""Assembles the app: settings, lifespan-owned upstream clients, middleware, error handlers, routes.

Run with ``python -m facade``, which adds JSON logs and the draining SIGTERM; plain
``uvicorn --factory facade.main:create_app`` serves the same app without them. Importing this
module builds nothing; ``facade.main:app`` builds the default app on first access.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache, partial
from typing import Any, TypedDict

import httpx
from fastapi import FastAPI

from facade.api.main import api_router
from facade.api.routes import metrics
from facade.batching import MicroBatcher
from facade.breaker import CircuitBreaker
from facade.core.config import Settings, get_settings
from facade.core.errors import PROBLEM_MEDIA_TYPE, install_error_handlers
from facade.core.lifecycle import Lifecycle
from facade.core.limits import InFlightLimiter
from facade.core.metrics import CIRCUIT_OPEN, DRIFT_PSI
from facade.core.middleware import (
    AccessLogMiddleware,
    BodySizeLimitMiddleware,
    MetricsMiddleware,
    UnhandledErrorMiddleware,
)
from facade.core.security import ApiKeys
from facade.drift import DriftMonitor
from facade.registry import RegistryClient
from facade.scoring import ScoringClient
from facade.service import ScoredOne, score_each

API_PREFIX = "/api/v1"


class State(TypedDict):
    scoring: ScoringClient
    registry: RegistryClient
    drift: DriftMonitor
    batcher: MicroBatcher[ScoredOne] | None


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
    # NB: a connection for every admitted prediction plus readiness and model info, so that an
    # admitted request never waits in the pool (its pool timeout would turn into a 504).
    connections = settings.MAX_IN_FLIGHT + 4
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    breaker = CircuitBreaker(settings.BREAKER_FAILURE_THRESHOLD, settings.BREAKER_COOL_DOWN_SECONDS)
    CIRCUIT_OPEN.set(0)
    # NB: trust_env=False: both upstreams are internal services; an HTTP(S)_PROXY meant for
    # outbound traffic must not capture them.
    async with (
        httpx.AsyncClient(
            base_url=settings.SCORING_URL, timeout=timeout, limits=limits, trust_env=False
        ) as scoring_http,
        httpx.AsyncClient(
            base_url=settings.MLFLOW_TRACKING_URI, timeout=timeout, trust_env=False
        ) as registry_http,
    ):
        scoring = ScoringClient(scoring_http, breaker, settings.UPSTREAM_RETRY_ATTEMPTS)
        registry = RegistryClient(registry_http, settings.MODEL_NAME)
        drift = DriftMonitor(registry, settings.DRIFT_WINDOW_SIZE, settings.DRIFT_MIN_SAMPLES)
        DRIFT_PSI.attach(drift.psi)
        batcher: MicroBatcher[ScoredOne] | None = None
        if settings.MICROBATCH_ENABLED:
            batcher = MicroBatcher(
                partial(score_each, scoring, registry, drift),
                max_rows=settings.MICROBATCH_MAX_ROWS,
                max_wait=settings.MICROBATCH_MAX_WAIT_MS / 1000,
                max_concurrency=settings.MICROBATCH_MAX_CONCURRENCY,
            )
            batcher.start()
        try:
            yield {"scoring": scoring, "registry": registry, "drift": drift, "batcher": batcher}
        finally:
            DRIFT_PSI.detach(drift.psi)
            if batcher is not None:
                await batcher.stop()


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
    app.state.api_keys = ApiKeys(settings.api_keys)
    app.state.limiter = InFlightLimiter(settings.MAX_IN_FLIGHT)
    app.state.lifecycle = Lifecycle()
    # NB: the last added middleware is the outermost: the access log and the metrics also see the
    # 413s of the body cap and the 500s produced inside.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.MAX_BODY_BYTES)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(AccessLogMiddleware)
    install_error_handlers(app)
    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(metrics.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = _with_problem_media_type(FastAPI.openapi(app))
            schema = _with_batch_cap(schema, settings.MAX_BATCH_SIZE)
            if not settings.api_keys:
                schema = _without_security(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _with_problem_media_type(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare error responses as application/problem+json, which is what the handlers send.

    NB: FastAPI files every ``responses=`` model under the route's own media type (JSON, or
    Markdown for the model card).
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if int(status) >= 400 and len(content) == 1:
                    response["content"] = {PROBLEM_MEDIA_TYPE: next(iter(content.values()))}
    return schema


def _with_batch_cap(schema: dict[str, Any], cap: int) -> dict[str, Any]:
    """Publish MAX_BATCH_SIZE as the batch's maxItems: a client can see the cap it will meet."""
    applications = schema["components"]["schemas"]["BatchIn"]["properties"]["applications"]
    applications["maxItems"] = cap
    return schema


def _without_security(schema: dict[str, Any]) -> dict[str, Any]:
    """With no API key configured nothing is checked, so the document declares no security either."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.pop("security", None)
    schema.get("components", {}).pop("securitySchemes", None)
    return schema


@lru_cache
def _default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> FastAPI:
    # NB: `uvicorn facade.main:app` works, yet importing this module reads no environment.
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
