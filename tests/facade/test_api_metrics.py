"""GET /metrics: the six contract families with their exact labels, route templates, promtool-clean."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import respx
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.facade.facade_fakes import APPROVED, REJECTED, UNREGISTERED_RUN, fake_model


def sample(name: str, **labels: str) -> float:
    # NB: the default registry lives as long as the test session, so tests compare deltas.
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client: TestClient) -> dict[str, list[dict[str, str]]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        family.name: [s.labels for s in family.samples]
        for family in text_string_to_metric_families(response.text)
    }


def test_contract_families_exist_with_their_labels(client: TestClient) -> None:
    client.post("/api/v1/predict", json=APPROVED)
    client.post("/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED]})

    families = scrape(client)

    # NB: the parser names counter families without the _total suffix.
    # NB: the seed's label names: by method, endpoint (the route template) and status.
    assert {"method", "endpoint", "status"} <= set(families["http_requests"][0])
    assert {"method", "endpoint", "status"} <= set(families["http_request_duration_seconds"][0])
    assert {"result", "model_version"} <= set(families["predictions"][0])
    for name in ("prediction_duration_seconds", "batch_prediction_size", "model_loaded"):
        assert families[name], name
    for name in ("upstream_request_duration_seconds", "upstream_errors", "http_requests_in_flight"):
        assert name in families


def test_predictions_total_counts_decisions_by_version(client: TestClient) -> None:
    approved = sample("predictions_total", result="APPROVED", model_version="1")
    rejected = sample("predictions_total", result="REJECTED", model_version="1")

    client.post("/api/v1/predict", json=APPROVED)
    client.post("/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED, REJECTED]})

    assert sample("predictions_total", result="APPROVED", model_version="1") == approved + 2
    assert sample("predictions_total", result="REJECTED", model_version="1") == rejected + 2


def test_batch_size_and_prediction_duration_are_observed(client: TestClient) -> None:
    batches = sample("batch_prediction_size_count")
    rows = sample("batch_prediction_size_sum")
    scorings = sample("prediction_duration_seconds_count")

    client.post("/api/v1/predict", json=APPROVED)
    client.post("/api/v1/predict/batch", json={"applications": [APPROVED] * 3})

    assert sample("batch_prediction_size_count") == batches + 1
    assert sample("batch_prediction_size_sum") == rows + 3
    assert sample("prediction_duration_seconds_count") == scorings + 2


def test_endpoint_label_is_the_route_template_never_the_raw_path(client: TestClient) -> None:
    predict_ok = sample("http_requests_total", method="POST", endpoint="/api/v1/predict", status="200")
    unmatched = sample("http_requests_total", method="GET", endpoint="<unmatched>", status="404")

    client.post("/api/v1/predict", json=APPROVED)
    client.get("/api/v1/applicants/12345-secret")

    assert (
        sample("http_requests_total", method="POST", endpoint="/api/v1/predict", status="200")
        == predict_ok + 1
    )
    assert sample("http_requests_total", method="GET", endpoint="<unmatched>", status="404") == unmatched + 1
    assert "12345-secret" not in client.get("/metrics").text


def test_method_not_allowed_is_labelled_with_the_route_template(client: TestClient) -> None:
    before = sample("http_requests_total", method="GET", endpoint="/api/v1/predict", status="405")

    client.get("/api/v1/predict")

    assert sample("http_requests_total", method="GET", endpoint="/api/v1/predict", status="405") == before + 1


def test_upstream_errors_are_counted_by_kind(client: TestClient, upstream: respx.MockRouter) -> None:
    registry_errors = sample("upstream_errors_total", kind="registry")
    upstream["invocations"].mock(side_effect=fake_model(UNREGISTERED_RUN))

    client.post("/api/v1/predict", json=APPROVED)

    assert sample("upstream_errors_total", kind="registry") == registry_errors + 1
    assert sample("model_loaded") == 0


def test_model_loaded_follows_the_last_prediction(client: TestClient, upstream: respx.MockRouter) -> None:
    client.post("/api/v1/predict", json=APPROVED)
    assert sample("model_loaded") == 1

    upstream["invocations"].respond(500, json={"message": "boom"})
    client.post("/api/v1/predict", json=APPROVED)
    assert sample("model_loaded") == 0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian: prometheus)")
def test_exposition_passes_promtool(client: TestClient) -> None:
    client.post("/api/v1/predict", json=APPROVED)
    client.get("/api/v1/nope")

    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=client.get("/metrics").text,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


def test_requests_with_made_up_methods_leave_the_route_template_cache_bounded(client: TestClient) -> None:
    """Any method token reaches the app under h11; remembering each would grow without bound."""
    client.post("/api/v1/predict", json=APPROVED)
    for index in range(200):
        assert client.request(f"FOO{index}", "/api/v1/predict").status_code == 405
    cache = client.app._facade_route_templates  # type: ignore[attr-defined]
    assert all(method in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} for method, _ in cache)
    assert ("POST", "/api/v1/predict") in cache
