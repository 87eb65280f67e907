"""Graceful shutdown, unit level: SIGTERM flips readiness first, then the server is told to exit."""

from __future__ import annotations

import asyncio
import signal
import time

import respx
import uvicorn
from fastapi.testclient import TestClient

from facade.__main__ import DrainingServer
from facade.core.lifecycle import Lifecycle
from tests.facade.facade_fakes import APPROVED


def server(drain_seconds: float) -> tuple[DrainingServer, Lifecycle]:
    lifecycle = Lifecycle()
    config = uvicorn.Config(app=lambda *args: None, log_config=None)
    return DrainingServer(config, lifecycle, drain_seconds), lifecycle


def test_sigterm_drains_before_the_server_exits() -> None:
    s, lifecycle = server(drain_seconds=0.2)

    s.handle_exit(signal.SIGTERM, None)

    assert lifecycle.draining
    assert not s.should_exit
    assert asyncio.run(s.on_tick(1)) is False
    time.sleep(0.25)
    assert asyncio.run(s.on_tick(2)) is True
    assert s.should_exit


def test_without_a_drain_period_sigterm_exits_at_once() -> None:
    s, lifecycle = server(drain_seconds=0)

    s.handle_exit(signal.SIGTERM, None)

    assert lifecycle.draining
    assert s.should_exit


def test_a_second_signal_skips_the_rest_of_the_drain() -> None:
    s, _ = server(drain_seconds=30)
    s.handle_exit(signal.SIGTERM, None)

    s.handle_exit(signal.SIGTERM, None)

    assert s.should_exit


def test_sigint_skips_the_drain() -> None:
    s, lifecycle = server(drain_seconds=30)

    s.handle_exit(signal.SIGINT, None)

    assert lifecycle.draining
    assert s.should_exit


def test_readiness_is_503_while_draining_without_calling_upstream(
    client: TestClient, upstream: respx.MockRouter
) -> None:
    client.app.state.lifecycle.start_draining()  # type: ignore[attr-defined]

    response = client.get("/api/v1/health/ready")

    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json()["detail"] == "The service is shutting down."
    assert not upstream.calls


def test_predictions_are_still_served_while_draining(client: TestClient) -> None:
    client.app.state.lifecycle.start_draining()  # type: ignore[attr-defined]

    assert client.post("/api/v1/predict", json=APPROVED).status_code == 200
