"""POST /api/v1/predict and /predict/batch: the response mapping, the truthful version, batch order."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest
import respx
from facade_fakes import APPROVED, REJECTED, RUN_2, fake_model, risk
from fastapi.testclient import TestClient

PREDICTION_FIELDS = {
    "application_id",
    "prediction",
    "confidence",
    "risk_score",
    "approval_probability",
    "rejection_probability",
    "model_version",
    "timestamp",
}


@pytest.mark.parametrize(
    ("applicant", "decision"), [(APPROVED, "APPROVED"), (REJECTED, "REJECTED")], ids=["approved", "rejected"]
)
def test_readme_applicant_maps_to_every_response_field(
    client: TestClient, applicant: dict[str, object], decision: str
) -> None:
    response = client.post("/api/v1/predict", json=applicant)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == PREDICTION_FIELDS
    assert uuid.UUID(body["application_id"]).version == 4
    assert body["prediction"] == decision
    rejection = risk(applicant["derogatory_marks"])  # type: ignore[arg-type]
    assert body["rejection_probability"] == rejection
    assert body["approval_probability"] == 1 - rejection
    assert body["risk_score"] == body["rejection_probability"]
    predicted_side = "approval" if decision == "APPROVED" else "rejection"
    assert body["confidence"] == body[f"{predicted_side}_probability"]
    assert body["model_version"] == "1"
    assert isinstance(body["model_version"], str)
    timestamp = datetime.fromisoformat(body["timestamp"])
    assert timestamp.utcoffset() == timedelta(0)


def test_sends_one_dataframe_split_row_in_schema_order(
    client: TestClient, upstream: respx.MockRouter
) -> None:
    client.post("/api/v1/predict", json=APPROVED)

    sent = json.loads(upstream["invocations"].calls.last.request.content)
    assert sent["dataframe_split"]["columns"] == list(APPROVED)
    assert sent["dataframe_split"]["data"] == [list(APPROVED.values())]


def test_application_ids_are_fresh_per_prediction(client: TestClient) -> None:
    first = client.post("/api/v1/predict", json=APPROVED).json()
    second = client.post("/api/v1/predict", json=APPROVED).json()

    assert first["application_id"] != second["application_id"]


def test_model_version_follows_the_run_of_each_upstream_answer(
    client: TestClient, upstream: respx.MockRouter
) -> None:
    before = client.post("/api/v1/predict", json=APPROVED).json()
    upstream["invocations"].mock(side_effect=fake_model(RUN_2))  # NB: the scoring server switched models
    after = client.post("/api/v1/predict", json=APPROVED).json()

    assert before["model_version"] == "1"
    assert after["model_version"] == "3"  # NB: RUN_2 is registered twice; the highest version wins


def test_registry_lookup_is_cached_per_run(client: TestClient, upstream: respx.MockRouter) -> None:
    for _ in range(3):
        client.post("/api/v1/predict", json=APPROVED)

    assert upstream["search"].call_count == 1


def test_batch_keeps_input_order_in_one_upstream_call(client: TestClient, upstream: respx.MockRouter) -> None:
    applications = [APPROVED, REJECTED, REJECTED, APPROVED]

    response = client.post("/api/v1/predict/batch", json={"applications": applications})

    assert response.status_code == 200
    body = response.json()
    assert [p["prediction"] for p in body["predictions"]] == ["APPROVED", "REJECTED", "REJECTED", "APPROVED"]
    assert body["count"] == 4
    assert body["summary"] == {"approved": 2, "rejected": 2}
    assert body["model_version"] == "1"
    assert all(p["model_version"] == "1" for p in body["predictions"])
    assert len({p["application_id"] for p in body["predictions"]}) == 4
    assert upstream["invocations"].call_count == 1


def test_batch_at_the_cap_is_scored(client: TestClient) -> None:
    response = client.post("/api/v1/predict/batch", json={"applications": [APPROVED] * 5})

    assert response.status_code == 200
    assert response.json()["count"] == 5


def test_batch_over_the_cap_names_applications_and_the_cap(
    client: TestClient, upstream: respx.MockRouter
) -> None:
    response = client.post("/api/v1/predict/batch", json={"applications": [APPROVED] * 6})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": "applications", "rule": "must contain at most 5 applications"}
    ]
    assert upstream["invocations"].call_count == 0
