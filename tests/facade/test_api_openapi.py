"""The OpenAPI document: every status each route can return, problem+json errors, the README examples."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from model_code.reasons import REASONS
from model_code.schema import EXAMPLE_APPLICANTS, FEATURE_NAMES, FEATURES

# NB: every protected route: who (401), may it (403), how much (429), and the service's own failures.
PROTECTED_ERRORS = {"200", "401", "403", "429", "500", "503"}
EXPECTED_STATUSES = {
    ("get", "/api/v1/health"): {"200", "500"},
    ("get", "/api/v1/health/ready"): {"200", "503", "500"},
    ("post", "/api/v1/predict"): {*PROTECTED_ERRORS, "400", "413", "415", "422", "502", "504"},
    ("post", "/api/v1/predict/batch"): {*PROTECTED_ERRORS, "400", "413", "415", "422", "502", "504"},
    ("get", "/api/v1/model/info"): PROTECTED_ERRORS,
    ("get", "/api/v1/model/card"): PROTECTED_ERRORS,
    ("get", "/api/v1/decisions"): {*PROTECTED_ERRORS, "409", "422", "501"},
    ("get", "/api/v1/decisions/verify"): {*PROTECTED_ERRORS, "422", "501"},
    ("get", "/api/v1/decisions/{application_id}"): {*PROTECTED_ERRORS, "404", "409", "422", "501"},
}


@pytest.fixture
def openapi(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_title_and_version_come_from_settings(openapi: dict[str, Any]) -> None:
    assert openapi["info"]["title"] == "Credit Score API"
    assert openapi["info"]["version"] == "0.1.0"


def test_every_route_declares_the_statuses_it_can_return(openapi: dict[str, Any]) -> None:
    declared = {
        (method, path): set(operation["responses"])
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
    }

    assert declared == EXPECTED_STATUSES


def test_errors_are_declared_as_problem_json(openapi: dict[str, Any]) -> None:
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"], (method, path)
            assert operation["description"], (method, path)
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    # NB: a 429 is the Problem with the RateLimit draft's violated-policies member.
                    model = "QuotaProblem" if status == "429" else "Problem"
                    assert response["content"] == {
                        "application/problem+json": {"schema": {"$ref": f"#/components/schemas/{model}"}}
                    }, (method, path, status)


def test_request_examples_are_the_readme_applicants(openapi: dict[str, Any]) -> None:
    body = openapi["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    examples = {name: example["value"] for name, example in body["examples"].items()}

    assert examples == {
        "approved": EXAMPLE_APPLICANTS["approved"],
        "rejected": EXAMPLE_APPLICANTS["rejected"],
    }
    batch = openapi["paths"]["/api/v1/predict/batch"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["examples"]["both"]["value"] == {"applications": list(EXAMPLE_APPLICANTS.values())}


def test_request_schema_follows_model_code_schema(openapi: dict[str, Any]) -> None:
    schema = openapi["components"]["schemas"]["ApplicationIn"]

    assert list(schema["properties"]) == list(FEATURE_NAMES)
    assert set(schema["required"]) == set(FEATURE_NAMES)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["age"] == {
        "type": "integer",
        "minimum": 18,
        "maximum": 100,
        "description": "Applicant age in years.",
        "title": "Age",
    }
    assert schema["properties"]["loan_intent"]["enum"][0] == "PERSONAL"
    for feature in FEATURES:
        field = schema["properties"][feature.name]
        if feature.kind == "category":
            assert field["enum"] == list(feature.categories), feature.name
        else:
            assert field["type"] == feature.kind, feature.name
            assert (field["minimum"], field["maximum"]) == (feature.minimum, feature.maximum), feature.name


def test_docs_and_redoc_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 200


def test_response_documents_score_points_and_reasons(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    prediction = schemas["PredictionPublic"]["properties"]
    reason = schemas["ReasonPublic"]["properties"]

    assert prediction["credit_score"]["minimum"] == 300
    assert prediction["credit_score"]["maximum"] == 850
    assert (
        "600 points at 50:1 good:bad odds, 20 more points each time the odds double"
        in (prediction["credit_score"]["description"])
    )
    assert prediction["reasons"]["maxItems"] == 4
    assert prediction["reasons"]["items"] == {"$ref": "#/components/schemas/ReasonPublic"}
    assert "Always present when the prediction is REJECTED" in prediction["reasons"]["description"]
    assert "also given for APPROVED" in prediction["reasons"]["description"]
    assert reason["code"]["enum"] == [r.code for r in REASONS]
    assert "per-tree path contributions" in reason["contribution"]["description"]
    assert {"credit_score", "reasons"} <= set(schemas["PredictionPublic"]["required"])
