"""The supervisor's own HTTP port (``SUPERVISOR_PORT``): its state for facades and operators, health, metrics.

Endpoints: ``GET /state`` (``model_code.rollout.ServingState`` as JSON; a facade adds ``client`` and
``using`` to report which scoring servers it still uses), ``GET /health`` (200 while the
supervisor follows its aliases, 503 naming a loop that stopped or keeps failing; with the served
versions) and ``GET /metrics`` (Prometheus). The app's lifespan
owns the supervisor and the stable forwarded port, so stopping the app stops every scoring server.
Nothing here authenticates: keep the port on the internal network, like the raw scoring server.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from model_code.rollout import CLIENT_PARAM, STATE_PATH, USING_PARAM, ServingState
from serving.config import Settings
from serving.forwarder import Forwarder
from serving.registry import Registry, Version
from serving.servers import ScoringServer, free_port
from serving.supervisor import Supervisor

STATE = TypeAdapter(ServingState)
# NB: bounded, so that a caller cannot grow the supervisor's memory with made-up reports.
CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_USING = 16
REGISTRY_TIMEOUT = httpx.Timeout(10.0, connect=2.0)


def create_app(settings: Settings, env: dict[str, str]) -> Starlette:
    """The supervisor's app; ``env`` is the environment its scoring servers run with."""

    def make_server(version: Version) -> ScoringServer:
        return ScoringServer(
            settings.MODEL_NAME,
            version,
            bind_host=settings.SERVING_HOST,
            local_host=settings.local_host,
            advertise_host=settings.advertise_host,
            port=free_port(settings.local_host),
            env=env,
            workers=settings.SCORING_WORKERS,
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            base_url=settings.MLFLOW_TRACKING_URI, timeout=REGISTRY_TIMEOUT, trust_env=False
        ) as http:
            supervisor = Supervisor(settings, Registry(http, settings.MODEL_NAME), make_server)
            forwarder = Forwarder(settings.SERVING_HOST, settings.SCORING_PORT, supervisor.champion_address)
            supervisor.connections_to = forwarder.connections_to
            await forwarder.start()
            supervisor.start()
            app.state.supervisor = supervisor
            try:
                yield
            finally:
                await forwarder.stop()
                await supervisor.close()

    return Starlette(
        routes=[
            Route(STATE_PATH, state, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def state(request: Request) -> Response:
    """The served backends and rollouts; a facade's ``client`` and ``using`` are its drain report."""
    supervisor: Supervisor = request.app.state.supervisor
    client = request.query_params.get(CLIENT_PARAM)
    if client is not None:
        using = [url for url in request.query_params.get(USING_PARAM, "").split(",") if url]
        if not CLIENT_ID.fullmatch(client) or len(using) > MAX_USING:
            rule = f"{CLIENT_PARAM}: 1 to 64 of A-Z a-z 0-9 . _ -; {USING_PARAM}: at most {MAX_USING} URLs"
            return JSONResponse({"detail": rule}, status_code=400)
        supervisor.report(client, using)
    return Response(STATE.dump_json(supervisor.state()), media_type="application/json")


async def health(request: Request) -> Response:
    """200 while the supervisor does its work, 503 naming the loops that do not; which versions serve.

    NB: readiness to score is the stable port's /ping; this says whether aliases are still followed
    (a registry that cannot be read is the registry's outage, logged, and keeps this 200).
    """
    supervisor: Supervisor = request.app.state.supervisor
    current = supervisor.state()
    body: dict[str, object] = {
        "status": "ok",
        "champion": current.champion.version if current.champion else None,
        "challenger": current.challenger.version if current.challenger else None,
    }
    if problems := supervisor.problems():
        return JSONResponse({**body, "status": "failing", "problems": problems}, status_code=503)
    return JSONResponse(body)


async def metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
