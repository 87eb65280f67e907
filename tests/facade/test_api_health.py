"""GET /api/v1/health and /health/ready: liveness always, readiness checked live with a reason."""

from __future__ import annotations

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.facade.facade_fakes import RUN_2, UNREGISTERED_RUN, fake_model


def test_health_is_ok_without_calling_upstream(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["ping"].mock(side_effect=httpx.ConnectError("Connection refused"))

    response = client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "app": "Credit Score API", "version": "0.1.0"}
    assert not upstream.calls


def test_ready_when_served_and_registered(client: TestClient, upstream: respx.MockRouter) -> None:
    response = client.get("/api/v1/health/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "model_name": "credit-score",
        "model_version": "1",
        "model_alias": "champion",
    }
    assert REGISTRY.get_sample_value("model_loaded") == 1
    assert upstream["ping"].called
    assert upstream["invocations"].called


def test_ready_checks_live_on_every_call(client: TestClient, upstream: respx.MockRouter) -> None:
    client.get("/api/v1/health/ready")
    upstream["invocations"].mock(side_effect=fake_model(RUN_2))

    response = client.get("/api/v1/health/ready")

    assert response.json()["model_version"] == "3"
    assert upstream["ping"].call_count == 2


@pytest.mark.parametrize(
    ("route", "failure", "reason"),
    [
        ("ping", httpx.ConnectError("Connection refused"), "ping failed: The scoring server is unreachable."),
        ("ping", httpx.Response(503), "ping failed: The scoring server answered /ping with 503."),
        (
            "ping",
            httpx.ConnectTimeout("timed out"),
            "ping failed: The scoring server did not answer in time.",
        ),
        ("invocations", httpx.ReadTimeout("timed out"), "warm-up prediction failed: The scoring server did"),
        ("invocations", httpx.Response(500, json={"message": "x"}), "warm-up prediction failed: The scoring"),
        ("invocations", httpx.Response(200, json={}), "warm-up prediction failed: The scoring server's"),
        ("search", httpx.ConnectError("Connection refused"), "version lookup failed: The model registry is"),
        ("search", httpx.Response(500), "version lookup failed: The model registry answered 500."),
    ],
    ids=[
        "ping-refused",
        "ping-503",
        "ping-timeout",
        "warm-up-timeout",
        "warm-up-500",
        "warm-up-garbage",
        "registry-down",
        "registry-500",
    ],
)
def test_not_ready_is_503_with_the_reason(
    client: TestClient,
    upstream: respx.MockRouter,
    route: str,
    failure: httpx.Response | Exception,
    reason: str,
) -> None:
    if isinstance(failure, httpx.Response):
        upstream[route].mock(return_value=failure)
    else:
        upstream[route].mock(side_effect=failure)

    response = client.get("/api/v1/health/ready")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry-after" in response.headers
    problem = response.json()
    assert problem["type"].endswith("/not-ready")
    assert problem["detail"].startswith(reason)
    assert REGISTRY.get_sample_value("model_loaded") == 0


def test_not_ready_when_served_run_is_not_registered(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["invocations"].mock(side_effect=fake_model(UNREGISTERED_RUN))

    response = client.get("/api/v1/health/ready")

    assert response.status_code == 503
    assert "not a registered version of credit-score" in response.json()["detail"]
