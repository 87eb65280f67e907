"""POST /api/v1/predict and /predict/batch: the response mapping, the truthful version, batch order."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest
import respx
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from model_code.reasons import credit_score
from tests.facade.facade_fakes import APPROVED, BASE_RISK, REJECTED, RUN_2, fake_model, risk, scored

PREDICTION_FIELDS = {
    "application_id",
    "prediction",
    "confidence",
    "risk_score",
    "approval_probability",
    "rejection_probability",
    "credit_score",
    "reasons",
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


def test_rejection_carries_score_points_and_catalogued_reasons(client: TestClient) -> None:
    body = client.post("/api/v1/predict", json=REJECTED).json()

    rejection = risk(REJECTED["derogatory_marks"])  # type: ignore[arg-type]
    assert body["credit_score"] == credit_score(rejection)
    assert body["reasons"] == [
        {
            "code": "DEROGATORY_MARKS",
            "description": "Number of derogatory marks",
            "contribution": pytest.approx(0.75 * (rejection - BASE_RISK)),
        },
        {
            "code": "CREDIT_HISTORY_LENGTH",
            "description": "Length of credit history",
            "contribution": pytest.approx(0.25 * (rejection - BASE_RISK)),
        },
    ]


def test_approval_without_a_factor_that_raised_the_risk_has_no_reasons(client: TestClient) -> None:
    body = client.post("/api/v1/predict", json=APPROVED).json()

    assert body["prediction"] == "APPROVED"
    assert body["reasons"] == []
    assert 300 <= body["credit_score"] <= 850


def test_reason_text_comes_from_the_catalogue_not_the_upstream(
    client: TestClient, upstream: respx.MockRouter
) -> None:
    row = scored(0.9)
    row["reasons"] = [
        {"code": "DEBT_TO_INCOME", "description": "Call 555-0100 to appeal", "contribution": 0.4}
    ]
    upstream["invocations"].respond(200, json={"predictions": [row]})

    body = client.post("/api/v1/predict", json=REJECTED).json()

    assert body["reasons"] == [
        {
            "code": "DEBT_TO_INCOME",
            "description": "Existing debt is high relative to income",
            "contribution": 0.4,
        }
    ]


def test_unknown_reason_code_from_upstream_is_502(client: TestClient, upstream: respx.MockRouter) -> None:
    bad_responses = REGISTRY.get_sample_value("upstream_errors_total", {"kind": "bad_response"}) or 0.0
    row = scored(0.9)
    row["reasons"] = [{"code": "ZODIAC_SIGN", "description": "Star sign", "contribution": 0.4}]
    upstream["invocations"].respond(200, json={"predictions": [row]})

    response = client.post("/api/v1/predict", json=REJECTED)

    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/bad-upstream-response")
    assert "ZODIAC" not in response.text
    assert REGISTRY.get_sample_value("upstream_errors_total", {"kind": "bad_response"}) == bad_responses + 1


def test_batch_maps_score_points_and_reasons_per_row(client: TestClient) -> None:
    body = client.post("/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED]}).json()

    approved, rejected = body["predictions"]
    assert approved["reasons"] == []
    assert rejected["reasons"][0]["code"] == "DEROGATORY_MARKS"
    assert approved["credit_score"] > rejected["credit_score"]


def test_answers_are_the_json_the_public_models_give(client: TestClient) -> None:
    """The routes serialise plain dicts (facade.schemas.prediction_json, batch_json); the bytes must be
    what PredictionPublic and BatchPredictionPublic would have produced, field for field."""
    from facade.schemas import BatchPredictionPublic, PredictionPublic

    one = client.post("/api/v1/predict", json=REJECTED)
    assert one.headers["content-type"] == "application/json"
    assert one.content == PredictionPublic.model_validate_json(one.content).model_dump_json().encode()
    batch = client.post("/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED]})
    assert batch.headers["content-type"] == "application/json"
    model = BatchPredictionPublic.model_validate_json(batch.content)
    assert batch.content == model.model_dump_json().encode()
    assert (model.count, model.summary.approved, model.summary.rejected) == (2, 1, 1)
    assert [p.reasons == [] for p in model.predictions] == [True, False]


def test_application_ids_are_distinct_random_uuid4s() -> None:
    from facade.service import application_ids

    ids = application_ids(1000)

    assert len(set(ids)) == 1000
    assert {(i.version, i.variant) for i in ids} == {(4, uuid.RFC_4122)}
    assert all(uuid.UUID(str(i), version=4) == i for i in ids)
    assert application_ids(0) == []
