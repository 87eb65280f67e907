"""Back-pressure and size limits: shed past MAX_IN_FLIGHT at once, refuse big bodies before parsing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
BATCH = "/api/v1/predict/batch"
CAP = 2


def slow_model(seconds: float) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
    score = fake_model()

    async def respond(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(seconds)
        return score(request)

    return respond


@pytest.fixture
def limited(settings: Settings, upstream: respx.MockRouter) -> Iterator[TestClient]:
    small = settings.model_copy(update={"MAX_IN_FLIGHT": CAP, "MAX_BODY_BYTES": 4096})
    with TestClient(create_app(small)) as client:
        yield client


def test_past_max_in_flight_requests_are_shed_at_once(
    limited: TestClient, upstream: respx.MockRouter
) -> None:
    upstream["invocations"].mock(side_effect=slow_model(0.5))
    shed_before = REGISTRY.get_sample_value("predictions_shed_total") or 0

    # NB: one portal (event loop) serves every thread inside `with TestClient`, so these overlap.
    with ThreadPoolExecutor(2 * CAP) as pool:
        responses = list(pool.map(lambda _: limited.post(PREDICT, json=APPROVED), range(2 * CAP)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * CAP + [503] * CAP
    for shed in (r for r in responses if r.status_code == 503):
        assert shed.headers["content-type"] == "application/problem+json"
        assert shed.json()["type"].endswith("/overloaded")
        assert shed.headers["retry-after"] == "1"
        assert shed.elapsed.total_seconds() < 0.5, "shed without waiting for a slot"
    # NB: rows, not calls: the micro-batcher may send the admitted two in one call.
    sent = [json.loads(call.request.content) for call in upstream["invocations"].calls]
    assert sum(len(body["dataframe_split"]["data"]) for body in sent) == CAP
    assert REGISTRY.get_sample_value("predictions_shed_total") == shed_before + CAP


def test_slots_are_given_back(limited: TestClient, upstream: respx.MockRouter) -> None:
    answers: list[Any] = [httpx.ConnectError("refused")] * 3 + [fake_model()] * 10
    upstream["invocations"].mock(side_effect=answers)
    limited.post(PREDICT, json=APPROVED)
    limited.post(PREDICT, json={"age": "x"})

    statuses = [limited.post(PREDICT, json=APPROVED).status_code for _ in range(3 * CAP)]

    assert statuses == [200] * (3 * CAP)
    assert limited.app.state.limiter.in_flight == 0  # type: ignore[attr-defined]


def test_health_and_metrics_are_not_limited(limited: TestClient, upstream: respx.MockRouter) -> None:
    upstream["invocations"].mock(side_effect=slow_model(0.3))

    with ThreadPoolExecutor(CAP + 1) as pool:
        busy = [pool.submit(limited.post, PREDICT, json=APPROVED) for _ in range(CAP)]
        health = pool.submit(limited.get, "/api/v1/health").result()
        assert [f.result().status_code for f in busy] == [200] * CAP

    assert health.status_code == 200


def test_a_declared_content_length_over_the_cap_is_refused_unread(
    limited: TestClient, upstream: respx.MockRouter
) -> None:
    body = json.dumps({"applications": [APPROVED] * 40}).encode()
    assert len(body) > 4096

    response = limited.post(BATCH, content=body, headers={"content-type": "application/json"})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/body-too-large")
    assert problem["detail"] == "The request body is larger than 4,096 bytes."
    assert not upstream["invocations"].called


def test_a_streamed_body_over_the_cap_is_refused_while_read(
    limited: TestClient, upstream: respx.MockRouter
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"applications": ['
        for _ in range(40):
            yield json.dumps(APPROVED).encode() + b","
        yield json.dumps(APPROVED).encode() + b"]}"

    # NB: a generator body goes out chunked, with no Content-Length to check up front.
    response = limited.post(BATCH, content=chunks(), headers={"content-type": "application/json"})

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/body-too-large")
    assert not upstream["invocations"].called


def test_a_body_under_the_cap_is_served(limited: TestClient) -> None:
    response = limited.post(BATCH, json={"applications": [APPROVED] * 5})

    assert response.status_code == 200


def test_openapi_publishes_the_batch_cap(limited: TestClient) -> None:
    schema = limited.get("/openapi.json").json()

    applications = schema["components"]["schemas"]["BatchIn"]["properties"]["applications"]
    assert applications["maxItems"] == 5  # MAX_BATCH_SIZE of the test settings
