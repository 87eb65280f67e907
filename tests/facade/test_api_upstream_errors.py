"""Failures of the scoring server and the registry: each becomes its own status, and nothing leaks."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from facade.core.config import Settings
from facade.main import create_app
from model_code.contract import Violation, refusal
from tests.facade.facade_fakes import APPROVED, REJECTED, RUN_1, UNREGISTERED_RUN, fake_model, scored

# NB: a value from the submitted applicant, as an upstream error body would echo it.
ECHOED_VALUE = "75000.0"
STACK_TRACE = 'Traceback (most recent call last):\n  File "/srv/mlflow/pyfunc/scoring_server.py"'
REASON = {"code": "DEROGATORY_MARKS", "description": "Number of derogatory marks", "contribution": 0.2}
FIVE_REASONS = [
    {"code": code, "description": "", "contribution": 0.1 - i / 100}
    for i, code in enumerate(["DEBT_TO_INCOME", "LOAN_TO_INCOME", "INCOME", "TOTAL_DEBT", "LOAN_INTENT"])
]


def upstream_500_echoing_input(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        500,
        json={
            "error_code": "INTERNAL_ERROR",
            "message": f"Cannot score income={ECHOED_VALUE} for row {request.content.decode()}",
            "stack_trace": STACK_TRACE,
        },
    )


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    return body  # type: ignore[no-any-return]


def test_connection_refused_is_503_with_retry_after(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["invocations"].mock(side_effect=httpx.ConnectError("Connection refused"))

    response = client.post("/api/v1/predict", json=APPROVED)

    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize("error", [httpx.RemoteProtocolError, httpx.ReadError], ids=["reset", "read"])
def test_broken_connection_is_503(client: TestClient, upstream: respx.MockRouter, error: type) -> None:
    upstream["invocations"].mock(side_effect=error("connection reset"))

    assert_problem(client.post("/api/v1/predict", json=APPROVED), 503)


def test_timeout_is_504(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["invocations"].mock(side_effect=httpx.ReadTimeout("timed out"))

    assert_problem(client.post("/api/v1/predict", json=APPROVED), 504)


def test_upstream_500_is_502_without_its_body(
    client: TestClient, upstream: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    upstream["invocations"].mock(side_effect=upstream_500_echoing_input)
    caplog.set_level(logging.DEBUG)

    response = client.post("/api/v1/predict", json=APPROVED)

    assert_problem(response, 502)
    for leaked in (ECHOED_VALUE, "Traceback", "scoring_server.py", "INTERNAL_ERROR"):
        assert leaked not in response.text
        assert leaked not in caplog.text
    assert "500" in caplog.text  # NB: the status code is what the operator gets


def test_model_rejection_is_422_naming_the_field(client: TestClient, upstream: respx.MockRouter) -> None:
    violations = [
        Violation("age", "must be an integer between 18 and 100", (0,)),
        Violation("colour", f"must be {ECHOED_VALUE}", (0,)),
        Violation("total_debt", "is required"),
    ]
    upstream["invocations"].respond(400, json={**refusal(violations), "stack_trace": STACK_TRACE})

    response = client.post("/api/v1/predict", json=APPROVED)

    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"field": "age", "rule": "must be an integer between 18 and 100"},
        {"field": "total_debt", "rule": "is required"},
    ]
    assert ECHOED_VALUE not in response.text
    assert "colour" not in response.text


def test_other_upstream_400_is_502(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["invocations"].respond(
        400, json={"error_code": "BAD_REQUEST", "message": f"Failed to parse {ECHOED_VALUE}"}
    )

    response = client.post("/api/v1/predict", json=APPROVED)

    assert_problem(response, 502)
    assert ECHOED_VALUE not in response.text


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>not json"),
        httpx.Response(200, json={"predictions": []}),
        httpx.Response(200, json={"predictions": [scored(0.1), scored(0.2)]}),
        httpx.Response(200, json={"predictions": [{"prediction": "APPROVED", "model_run_id": RUN_1}]}),
        httpx.Response(200, json={"predictions": [scored(1.7)]}),
        httpx.Response(200, json={"predictions": [{**scored(0.1), "prediction": "MAYBE"}]}),
        httpx.Response(200, json={"predictions": [{**scored(0.1), "model_run_id": "not-a-run"}]}),
        httpx.Response(200, json=[scored(0.1)]),
        httpx.Response(200, json={"predictions": [{**scored(0.1), "credit_score": 900}]}),
        httpx.Response(200, json={"predictions": [{**scored(0.1), "credit_score": None}]}),
        httpx.Response(200, json={"predictions": [{**scored(0.9), "reasons": []}]}),
        httpx.Response(200, json={"predictions": [{**scored(0.9), "reasons": scored(0.9)["reasons"][::-1]}]}),
        httpx.Response(200, json={"predictions": [{**scored(0.9), "reasons": [REASON] * 2}]}),
        httpx.Response(200, json={"predictions": [{**scored(0.9), "reasons": FIVE_REASONS}]}),
        httpx.Response(
            200, json={"predictions": [{**scored(0.9), "reasons": [{**REASON, "contribution": 0}]}]}
        ),
        httpx.Response(200, json={"predictions": [{**scored(0.1), "reasons": None}]}),
    ],
    ids=[
        "not-json",
        "no-rows",
        "extra-row",
        "missing-columns",
        "probability-out-of-range",
        "unknown-decision",
        "malformed-run-id",
        "bare-list",
        "score-out-of-range",
        "score-missing",
        "rejection-without-reasons",
        "reasons-smallest-first",
        "reason-repeated",
        "five-reasons",
        "reason-that-lowered-the-risk",
        "reasons-null",
    ],
)
def test_unusable_upstream_answer_is_502(
    client: TestClient, upstream: respx.MockRouter, answer: httpx.Response
) -> None:
    upstream["invocations"].mock(return_value=answer)

    assert_problem(client.post("/api/v1/predict", json=APPROVED), 502)


def test_rows_from_two_runs_in_one_answer_is_502(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["invocations"].respond(
        200, json={"predictions": [scored(0.1, RUN_1), scored(0.9, UNREGISTERED_RUN)]}
    )

    response = client.post("/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED]})

    assert_problem(response, 502)


@pytest.mark.parametrize(
    "registry_failure",
    [
        httpx.ConnectError("Connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(500, json={"error_code": "INTERNAL_ERROR", "message": "database is locked"}),
        httpx.Response(200, text="{"),
    ],
    ids=["down", "slow", "error", "garbage"],
)
def test_registry_failure_is_503_never_a_guessed_version(
    client: TestClient, upstream: respx.MockRouter, registry_failure: httpx.Response | Exception
) -> None:
    if isinstance(registry_failure, httpx.Response):
        upstream["search"].mock(return_value=registry_failure)
    else:
        upstream["search"].mock(side_effect=registry_failure)

    response = client.post("/api/v1/predict", json=APPROVED)

    assert_problem(response, 503)
    assert "retry-after" in response.headers
    assert "model_version" not in response.text


def test_unregistered_run_is_503(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["invocations"].mock(side_effect=fake_model(UNREGISTERED_RUN))

    body = assert_problem(client.post("/api/v1/predict", json=APPROVED), 503)

    assert "not a registered version of credit-score" in str(body["detail"])


def test_batch_failures_translate_the_same_way(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["invocations"].mock(side_effect=httpx.ConnectError("Connection refused"))

    assert_problem(client.post("/api/v1/predict/batch", json={"applications": [APPROVED]}), 503)


def test_unexpected_exception_is_a_bare_500_logged_without_its_message(
    settings: Settings, upstream: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    upstream["invocations"].mock(side_effect=RuntimeError(f"cannot score {ECHOED_VALUE}"))
    caplog.set_level(logging.DEBUG)

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post("/api/v1/predict", json=APPROVED)

    body = assert_problem(response, 500)
    assert body["type"] == "about:blank"
    assert ECHOED_VALUE not in response.text
    assert "Traceback" not in response.text
    assert ECHOED_VALUE not in caplog.text
    assert "RuntimeError" in caplog.text
