"""Assembles the app: settings, lifespan-owned upstream clients, middleware, error handlers, routes.

Run with ``python -m facade``, which adds JSON logs and the draining SIGTERM; plain
``uvicorn --factory facade.main:create_app`` serves the same app without them. Importing this
module builds nothing; ``facade.main:app`` builds the default app on first access.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import lru_cache
from typing import TypedDict

import httpx
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from facade.api.main import api_router
from facade.api.openapi import openapi_for
from facade.api.routes import metrics
from facade.api.validation import install_validation_handler
from facade.core.config import Settings, get_settings
from facade.core.handlers import install_problem_handlers
from facade.core.lifecycle import Lifecycle
from facade.core.limits import InFlightLimiter
from facade.core.middleware import (
    BodySizeLimitMiddleware,
    InstrumentationMiddleware,
    UnhandledErrorMiddleware,
)
from facade.core.tokens import JwksKeys
from facade.drift import DriftMonitor
from facade.metrics import DRIFT_PSI, MODEL_LOADED, PREDICTIONS_IN_FLIGHT, SHADOW_QUEUED
from facade.records.store import DecisionStore
from facade.security import access as access_control
from facade.service import Batching, PredictionService
from facade.shadow import Shadow
from facade.upstream.backends import Role, ScoringBackends
from facade.upstream.breaker import CircuitBreaker
from facade.upstream.metrics import CIRCUIT_OPEN
from facade.upstream.registry import RegistryClient
from facade.upstream.scoring import ScoringClient

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# Where /docs and /redoc load Swagger UI and ReDoc from: this app, not a CDN (fastapi-offline ships them).
DOCS_ASSETS = "/docs/assets"
# NB: the supervisor's state is small and local; a slow answer must not hold a poll (or a request
# waiting on a re-read after a failed connection) for long.
SUPERVISOR_TIMEOUT = httpx.Timeout(2.0, connect=1.0)
SHADOW_LIMITS = httpx.Limits(max_connections=2, max_keepalive_connections=2)


class State(TypedDict):
    service: PredictionService
    access: access_control.AccessControl


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[State]:
    """Own one pooled HTTP client per upstream (and one for the JWKS) for the life of the app."""
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

    def breaker() -> CircuitBreaker:
        return CircuitBreaker(settings.BREAKER_FAILURE_THRESHOLD, settings.BREAKER_COOL_DOWN_SECONDS)

    def connect(url: str, role: Role) -> tuple[ScoringClient, httpx.AsyncClient]:
        """The client of one scoring server the supervisor names, with a breaker of its own."""
        if role == "champion":
            http = httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits, trust_env=False)
            return ScoringClient(http, breaker(), settings.UPSTREAM_RETRY_ATTEMPTS), http
        # NB: the shadow's worker makes one call at a time, never retried: a failing challenger costs
        # one call's deadline, and its failures are the shadow's metrics, not the champion's.
        http = httpx.AsyncClient(base_url=url, timeout=timeout, limits=SHADOW_LIMITS, trust_env=False)
        return ScoringClient(http, breaker(), 1, name="challenger", instrumented=False), http

    # NB: trust_env=False: every upstream is an internal service; an HTTP(S)_PROXY meant for
    # outbound traffic must not capture them.
    async with AsyncExitStack() as stack:
        scoring_http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=settings.SCORING_URL, timeout=timeout, limits=limits, trust_env=False)
        )
        registry_http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=settings.MLFLOW_TRACKING_URI, timeout=timeout, trust_env=False)
        )
        supervisor_http = None
        if settings.SUPERVISOR_URL is not None:
            supervisor_http = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=settings.SUPERVISOR_URL, timeout=SUPERVISOR_TIMEOUT, trust_env=False
                )
            )
        backends = ScoringBackends(
            ScoringClient(scoring_http, breaker(), settings.UPSTREAM_RETRY_ATTEMPTS),
            connect,
            supervisor_http,
            settings.SUPERVISOR_POLL_SECONDS,
        )
        jwks_http = None
        if settings.OAUTH_JWKS_URL:
            jwks_http = await stack.enter_async_context(access_control.jwks_client(settings))
        access = access_control.from_settings(settings, jwks_http)
        stack.push_async_callback(access.aclose)
        if access.tokens is not None and isinstance(access.tokens.keys, JwksKeys):
            # NB: best effort: the first token should not wait for the fetch; a failure is retried then.
            await access.tokens.keys.refresh()
        registry = RegistryClient(registry_http, settings.MODEL_NAME)
        drift = DriftMonitor(registry, settings.DRIFT_WINDOW_SIZE, settings.DRIFT_MIN_SAMPLES)
        records = await stack.enter_async_context(_decision_records(settings))
        shadow = None
        if settings.SHADOW_SAMPLE_RATE > 0:
            shadow = Shadow(backends, registry, settings.SHADOW_SAMPLE_RATE, settings.SHADOW_QUEUE_SIZE)
        service = PredictionService(backends, registry, drift, _batching(settings), records, shadow)
        # NB: the gauges read the state they mirror at scrape time; the last app started is the one
        # a process exports (one per process outside tests).
        limiter: InFlightLimiter = app.state.limiter
        CIRCUIT_OPEN.set_function(lambda: float(backends.champion.breaker.failing_fast))
        MODEL_LOADED.set_function(lambda: float(service.model_loaded))
        PREDICTIONS_IN_FLIGHT.set_function(lambda: float(limiter.in_flight))
        SHADOW_QUEUED.set_function(lambda: float(shadow.queued if shadow is not None else 0))
        DRIFT_PSI.attach(drift.psi)
        await backends.start()
        stack.push_async_callback(backends.stop)
        service.start()
        try:
            yield {"service": service, "access": access}
        finally:
            DRIFT_PSI.detach(drift.psi)
            await service.stop()


@asynccontextmanager
async def _decision_records(settings: Settings) -> AsyncIterator[DecisionStore | None]:
    """The decision records store, migrated and writing, with its background purge; None when off."""
    if settings.DECISIONS_DATABASE_URL is None:
        logger.warning(
            "decision records are off (DECISIONS_DATABASE_URL is not set): decisions are answered "
            "without being recorded"
        )
        yield None
        return
    store = DecisionStore(
        settings.DECISIONS_DATABASE_URL.get_secret_value(),
        write_timeout=settings.DECISION_WRITE_TIMEOUT_SECONDS,
    )
    purging: asyncio.Task[None] | None = None
    try:
        await store.start(migrate=settings.DECISIONS_MIGRATE_ON_START)
        logger.info("decision records: %s, kept %d days", store.describe(), settings.DECISION_RETENTION_DAYS)
        if settings.DECISION_PURGE_INTERVAL_SECONDS > 0:
            purging = asyncio.create_task(
                store.purge_forever(
                    settings.DECISION_RETENTION_DAYS, settings.DECISION_PURGE_INTERVAL_SECONDS
                ),
                name="decision-records-purge",
            )
        yield store
    finally:
        if purging is not None:
            purging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purging
        await store.close()


def _batching(settings: Settings) -> Batching | None:
    if not settings.MICROBATCH_ENABLED:
        return None
    return Batching(
        max_rows=settings.MICROBATCH_MAX_ROWS,
        max_wait=settings.MICROBATCH_MAX_WAIT_MS / 1000,
        max_concurrency=settings.MICROBATCH_MAX_CONCURRENCY,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the facade app; ``settings`` defaults to the environment's."""
    settings = settings or get_settings()
    logging.getLogger("facade").setLevel(settings.log_level)
    # NB: DEBUG is deliberately not passed to FastAPI: Starlette's debug mode answers 500s
    # with a traceback, which can quote applicant data. FastAPIOffline is FastAPI whose /docs and
    # /redoc load their assets from this app instead of a CDN, so they work in a closed network;
    # validatorUrl=None keeps Swagger UI from asking swagger.io to validate the document.
    app = FastAPIOffline(
        title=settings.APP_NAME,
        version=settings.APP_VERSION,
        description="Credit decisions from the registered credit-score model served by MLflow.",
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},
    )
    # NB: a key or certificate client given a scope that does not exist stops the start, here.
    access_control.check_scopes(settings)
    app.state.settings = settings
    app.state.limiter = InFlightLimiter(settings.MAX_IN_FLIGHT)
    app.state.lifecycle = Lifecycle()
    # NB: the last added middleware is the outermost: the instrumentation also sees the 413s of the
    # body cap and the 500s produced inside.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.MAX_BODY_BYTES)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(InstrumentationMiddleware)
    install_problem_handlers(app)
    install_validation_handler(app)
    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(metrics.router)
    app.openapi = openapi_for(app, settings)  # type: ignore[method-assign]
    return app


@lru_cache
def _default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> FastAPI:
    # NB: `uvicorn facade.main:app` works, yet importing this module reads no environment.
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
