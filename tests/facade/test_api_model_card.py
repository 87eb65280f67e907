"""GET /api/v1/model/card: the served run's model card as Markdown, or a 503 problem."""

from __future__ import annotations

import httpx
import respx
from fastapi.testclient import TestClient

from tests.facade.facade_fakes import MODEL_CARD, RUN_1, RUN_2, UNREGISTERED_RUN, fake_model


def test_model_card_is_the_served_runs_markdown(client: TestClient, upstream: respx.MockRouter) -> None:
    response = client.get("/api/v1/model/card")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.text == MODEL_CARD
    assert dict(upstream["artifact"].calls.last.request.url.params) == {
        "path": "model_card.md",
        "run_uuid": RUN_1,
    }


def test_model_card_follows_the_run_answering_now(client: TestClient, upstream: respx.MockRouter) -> None:
    client.get("/api/v1/model/card")
    upstream["invocations"].mock(side_effect=fake_model(RUN_2))

    assert client.get("/api/v1/model/card").status_code == 200
    assert upstream["artifact"].calls.last.request.url.params["run_uuid"] == RUN_2


def test_model_card_is_fetched_once_per_run(client: TestClient, upstream: respx.MockRouter) -> None:
    for _ in range(3):
        client.get("/api/v1/model/card")

    assert upstream["artifact"].call_count == 1


def test_missing_model_card_is_503_problem(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["artifact"].respond(
        404, json={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "No such artifact"}
    )

    response = client.get("/api/v1/model/card")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "Retry-After" in response.headers
    assert response.json()["detail"].startswith("The served model's card is unavailable")


def test_unreachable_tracking_server_is_503(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["artifact"].mock(side_effect=httpx.ConnectError("refused"))

    assert client.get("/api/v1/model/card").status_code == 503


def test_model_card_of_an_unregistered_run_is_503(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["invocations"].mock(side_effect=fake_model(UNREGISTERED_RUN))

    response = client.get("/api/v1/model/card")

    assert response.status_code == 503
    assert upstream["artifact"].call_count == 0


def test_model_card_is_declared_as_markdown_in_openapi(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/model/card"]["get"]

    assert operation["responses"]["200"]["content"] == {"text/markdown": {"schema": {"type": "string"}}}
    assert set(operation["responses"]) == {"200", "401", "403", "429", "500", "503"}
