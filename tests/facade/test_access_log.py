"""Structured logs: one JSON access line per request, and no applicant value in any log or error body."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from facade.core.logs import JsonFormatter, logging_config
from tests.facade.facade_fakes import APPROVED

# NB: values no other part of a request or a log line would contain by chance.
PRIVATE = {**APPROVED, "income": 76543.21, "loan_amount": 12345.67, "total_debt": 9876.54}
PRIVATE_VALUES = ["76543.21", "12345.67", "9876.54"]


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The access log records captured so far, as the JSON formatter writes them."""
    return [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "facade.access"]


def test_one_json_line_per_request_with_route_status_latency_and_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.post("/api/v1/predict", json=APPROVED, headers={"X-Request-ID": "req-42"})
    client.get("/api/v1/health")

    lines = access_lines(caplog)
    assert len(lines) == 2
    line = lines[0]
    assert line["logger"] == "facade.access"
    assert (line["method"], line["route"], line["status"]) == ("POST", "/api/v1/predict", 200)
    assert isinstance(line["latency_ms"], float)
    assert line["latency_ms"] > 0
    assert line["request_id"] == "req-42" == response.headers["x-request-id"]
    assert line["application_ids"] == [response.json()["application_id"]]
    assert "application_ids" not in lines[1]


def test_batch_lines_carry_every_application_id(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    response = client.post("/api/v1/predict/batch", json={"applications": [APPROVED, APPROVED]})

    (line,) = access_lines(caplog)
    assert line["application_ids"] == [p["application_id"] for p in response.json()["predictions"]]


def test_an_unusable_request_id_is_replaced(client: TestClient) -> None:
    response = client.get("/api/v1/health", headers={"X-Request-ID": "name=Jane Doe; income=76543.21"})

    assert len(response.headers["x-request-id"]) == 32
    assert "Jane" not in response.headers["x-request-id"]


def test_routes_are_logged_as_templates_never_raw_paths(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.get("/api/v1/predict/76543.21?income=76543.21")

    (line,) = access_lines(caplog)
    assert line["route"] == "<unmatched>"
    assert line["status"] == 404


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("valid", 200),
        ("invalid-field", 422),
        ("unknown-field", 422),
        ("upstream-echoes-input", 502),
        ("upstream-refuses-connections", 503),
        ("upstream-times-out", 504),
        ("registry-down", 503),
    ],
)
def test_no_applicant_value_in_any_log_line_or_error_body(
    client: TestClient,
    upstream: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
    expected: int,
) -> None:
    body: dict[str, object] = dict(PRIVATE)
    if scenario == "invalid-field":
        body["age"] = 12345.67
    elif scenario == "unknown-field":
        body["nickname"] = 76543.21
    elif scenario == "upstream-echoes-input":
        upstream["invocations"].mock(
            side_effect=lambda request: httpx.Response(500, json={"message": request.content.decode()})
        )
    elif scenario == "upstream-refuses-connections":
        upstream["invocations"].mock(side_effect=httpx.ConnectError("Connection refused"))
    elif scenario == "upstream-times-out":
        upstream["invocations"].mock(side_effect=httpx.ReadTimeout("timed out"))
    elif scenario == "registry-down":
        upstream["search"].mock(side_effect=httpx.ConnectError("Connection refused"))
    caplog.set_level(logging.DEBUG)

    response = client.post("/api/v1/predict", json=body)

    assert response.status_code == expected
    formatted = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert formatted, "something was logged"
    for value in PRIVATE_VALUES:
        assert value not in formatted, scenario
        if expected != 200:
            assert value not in response.text, scenario


def test_exceptions_are_logged_without_their_message() -> None:
    income = PRIVATE["income"]
    try:
        raise ValueError(f"cannot score income={income}")
    except ValueError:
        record = logging.getLogger("facade").makeRecord(
            "facade", logging.ERROR, __file__, 1, "failed", (), exc_info=sys.exc_info()
        )

    line = json.loads(JsonFormatter().format(record))

    assert line["exception"] == "ValueError"
    assert "76543.21" not in json.dumps(line)
    assert "test_access_log.py" in line["frames"]


def test_the_process_log_config_is_json_for_every_logger() -> None:
    config = logging_config("INFO")

    assert config["formatters"]["json"]["()"] is JsonFormatter
    assert config["root"] == {"handlers": ["stderr"], "level": "INFO"}
    assert "handlers" not in config["loggers"]["uvicorn"]  # NB: propagates to the JSON handler
