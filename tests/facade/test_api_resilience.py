"""Deadlines, retries and the circuit breaker, seen from the API with the scoring server mocked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from facade.core.config import Settings
from facade.main import create_app
from tests.facade.facade_fakes import APPROVED, fake_model

PREDICT = "/api/v1/predict"
READY = "/api/v1/health/ready"
REFUSED = httpx.ConnectError("Connection refused")


@pytest.fixture
def breaker_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "BREAKER_FAILURE_THRESHOLD": 2,
            "BREAKER_COOL_DOWN_SECONDS": 0.2,
            "UPSTREAM_RETRY_ATTEMPTS": 3,
        }
    )


@pytest.fixture
def breaker_client(breaker_settings: Settings, upstream: respx.MockRouter) -> Iterator[TestClient]:
    with TestClient(create_app(breaker_settings)) as client:
        yield client


def test_upstream_deadlines_come_from_settings(settings: Settings, upstream: respx.MockRouter) -> None:
    custom = settings.model_copy(
        update={"UPSTREAM_CONNECT_TIMEOUT": 0.5, "UPSTREAM_READ_TIMEOUT": 2.5, "UPSTREAM_POOL_TIMEOUT": 0.25}
    )

    with TestClient(create_app(custom)) as client:
        client.post(PREDICT, json=APPROVED)

    timeout = upstream["invocations"].calls.last.request.extensions["timeout"]
    assert timeout == {"connect": 0.5, "read": 2.5, "write": 2.5, "pool": 0.25}


def test_a_refused_connection_is_retried_then_succeeds(
    client: TestClient, upstream: respx.MockRouter
) -> None:
    answers: list[Any] = [REFUSED, REFUSED, fake_model()]
    upstream["invocations"].mock(side_effect=answers)
    retries = REGISTRY.get_sample_value("upstream_retries_total") or 0

    response = client.post(PREDICT, json=APPROVED)

    assert response.status_code == 200
    assert upstream["invocations"].call_count == 3
    assert REGISTRY.get_sample_value("upstream_retries_total") == retries + 2


def test_retries_are_bounded(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["invocations"].mock(side_effect=REFUSED)

    response = client.post(PREDICT, json=APPROVED)

    assert response.status_code == 503
    assert upstream["invocations"].call_count == 3  # UPSTREAM_RETRY_ATTEMPTS


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (httpx.ReadTimeout("timed out"), 504),
        (httpx.ConnectTimeout("timed out"), 504),
        (httpx.RemoteProtocolError("Server disconnected without sending a response"), 503),
        (httpx.ReadError("connection reset"), 503),
        (httpx.WriteError("broken pipe"), 503),
    ],
    ids=["read-timeout", "connect-timeout", "disconnected", "read-error", "write-error"],
)
def test_no_retry_once_the_request_may_have_reached_the_model(
    client: TestClient, upstream: respx.MockRouter, failure: Exception, status: int
) -> None:
    upstream["invocations"].mock(side_effect=failure)

    response = client.post(PREDICT, json=APPROVED)

    assert response.status_code == status
    assert upstream["invocations"].call_count == 1


def test_circuit_opens_after_consecutive_connection_failures_and_fails_fast(
    breaker_client: TestClient, upstream: respx.MockRouter
) -> None:
    upstream["invocations"].mock(side_effect=REFUSED)
    for _ in range(2):
        assert breaker_client.post(PREDICT, json=APPROVED).status_code == 503
    calls = upstream["invocations"].call_count

    response = breaker_client.post(PREDICT, json=APPROVED)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/circuit-open")
    assert int(response.headers["retry-after"]) >= 1
    assert upstream["invocations"].call_count == calls, "an open circuit must not call the scoring server"
    assert REGISTRY.get_sample_value("circuit_breaker_open") == 1


def test_half_open_probe_after_the_cool_down_closes_the_circuit(
    breaker_client: TestClient, upstream: respx.MockRouter
) -> None:
    upstream["invocations"].mock(side_effect=REFUSED)
    for _ in range(2):
        breaker_client.post(PREDICT, json=APPROVED)
    upstream["invocations"].mock(side_effect=fake_model())
    assert breaker_client.post(PREDICT, json=APPROVED).json()["type"].endswith("/circuit-open")

    time.sleep(0.25)  # BREAKER_COOL_DOWN_SECONDS
    response = breaker_client.post(PREDICT, json=APPROVED)

    assert response.status_code == 200
    assert breaker_client.post(PREDICT, json=APPROVED).status_code == 200
    assert REGISTRY.get_sample_value("circuit_breaker_open") == 0


def test_readiness_probes_live_while_open_and_its_success_closes_the_circuit(
    breaker_client: TestClient, upstream: respx.MockRouter
) -> None:
    upstream["invocations"].mock(side_effect=REFUSED)
    upstream["ping"].mock(side_effect=REFUSED)
    for _ in range(2):
        breaker_client.post(PREDICT, json=APPROVED)
    assert breaker_client.get(READY).status_code == 503
    pings = upstream["ping"].call_count

    upstream["ping"].mock(return_value=httpx.Response(200, text="\n"))
    upstream["invocations"].mock(side_effect=fake_model())
    ready = breaker_client.get(READY)

    assert upstream["ping"].call_count == pings + 1
    assert ready.status_code == 200
    assert breaker_client.post(PREDICT, json=APPROVED).status_code == 200


def test_readiness_is_503_as_soon_as_the_server_is_down(
    client: TestClient, upstream: respx.MockRouter
) -> None:
    assert client.get(READY).status_code == 200
    upstream["ping"].mock(side_effect=REFUSED)

    response = client.get(READY)

    assert response.status_code == 503
    assert response.json()["detail"].startswith("ping failed: The scoring server is unreachable.")


def test_a_server_error_answer_counts_as_reachable(
    breaker_client: TestClient, upstream: respx.MockRouter
) -> None:
    upstream["invocations"].mock(side_effect=[REFUSED] * 3 + [httpx.Response(500)] + [REFUSED] * 3)

    statuses = [breaker_client.post(PREDICT, json=APPROVED).status_code for _ in range(3)]

    assert statuses == [503, 502, 503]
    assert REGISTRY.get_sample_value("circuit_breaker_open") == 0
