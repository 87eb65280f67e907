"""Bad input: every case is a 4xx problem+json naming the field and the rule, never echoing the value."""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest
import respx
from fastapi.testclient import TestClient

from tests.facade.facade_fakes import APPROVED

AGE_RULE = "must be an integer between 18 and 100"
INCOME_RULE = "must be a finite number between 0 and 10,000,000"
INTENT_RULE = "must be one of PERSONAL, EDUCATION, MEDICAL, VENTURE, HOMEIMPROVEMENT, DEBTCONSOLIDATION"
PREDICT = "/api/v1/predict"
BATCH = "/api/v1/predict/batch"
JSON = {"content-type": "application/json"}


class Case(NamedTuple):
    url: str
    body: str
    status: int
    field: str | None  # NB: None when the problem has no per-field errors (415)
    rule: str | None
    leaked: str | None  # the submitted value's text, which must not come back
    content_type: str = "application/json"


def applicant(**changes: object) -> dict[str, object]:
    return {**APPROVED, **changes}


def without(name: str) -> dict[str, object]:
    return {key: value for key, value in APPROVED.items() if key != name}


def one(**changes: object) -> str:
    # NB: json.dumps writes NaN and Infinity as bare tokens, the way a careless client would.
    return json.dumps(applicant(**changes))


CASES = {
    "age-as-string": Case(PREDICT, one(age="35"), 422, "age", AGE_RULE, '"35"'),
    "age-fractional": Case(PREDICT, one(age=35.5), 422, "age", AGE_RULE, "35.5"),
    "age-float-integral-out-of-range": Case(PREDICT, one(age=101.0), 422, "age", AGE_RULE, "101.0"),
    "age-null": Case(PREDICT, one(age=None), 422, "age", AGE_RULE, "null"),
    "age-true": Case(PREDICT, one(age=True), 422, "age", AGE_RULE, "true"),
    "age-17": Case(PREDICT, one(age=17), 422, "age", AGE_RULE, "17"),
    "age-101": Case(PREDICT, one(age=101), 422, "age", AGE_RULE, "101"),
    "income-nan": Case(PREDICT, one(income=float("nan")), 422, "income", INCOME_RULE, "NaN"),
    "income-infinity": Case(PREDICT, one(income=float("inf")), 422, "income", INCOME_RULE, "Infinity"),
    "income-overflowing-float": Case(
        PREDICT, one(income=1).replace('"income": 1', '"income": 1e400'), 422, "income", INCOME_RULE, "1e400"
    ),
    "income-huge-integer": Case(PREDICT, one(income=10**30), 422, "income", INCOME_RULE, str(10**30)),
    "income-5000-digits": Case(
        PREDICT, one(income=1).replace('"income": 1', '"income": ' + "7" * 5000), 400, None, None, "7" * 20
    ),
    "income-negative": Case(PREDICT, one(income=-5000.25), 422, "income", INCOME_RULE, "-5000.25"),
    "income-as-string": Case(PREDICT, one(income="75001"), 422, "income", INCOME_RULE, "75001"),
    "income-true": Case(PREDICT, one(income=True), 422, "income", INCOME_RULE, "true"),
    "employment-negative": Case(
        PREDICT,
        one(employment_length=-3),
        422,
        "employment_length",
        "must be an integer between 0 and 60",
        "-3",
    ),
    "intent-unknown": Case(PREDICT, one(loan_intent="CARLOAN"), 422, "loan_intent", INTENT_RULE, "CARLOAN"),
    "intent-lowercase": Case(
        PREDICT, one(loan_intent="personal"), 422, "loan_intent", INTENT_RULE, "personal"
    ),
    "intent-number": Case(PREDICT, one(loan_intent=12345), 422, "loan_intent", INTENT_RULE, "12345"),
    "missing-field": Case(PREDICT, json.dumps(without("total_debt")), 422, "total_debt", "is required", None),
    "unknown-field": Case(
        PREDICT, one(favourite_colour="teal"), 422, "favourite_colour", "is not an allowed field", "teal"
    ),
    "unknown-field-with-personal-data": Case(
        PREDICT,
        one(**{"John Doe SSN 078-05-1120": 1}),
        422,
        "<unknown field>",
        "is not an allowed field",
        "John Doe",
    ),
    "empty-body": Case(PREDICT, "", 422, "body", "is required", None),
    "malformed-json": Case(PREDICT, '{"age": 35, "income": 7500', 400, "body", "must be valid JSON", "7500"),
    "array-not-object": Case(PREDICT, json.dumps([APPROVED]), 422, "body", "must be a JSON object", None),
    "string-not-object": Case(
        PREDICT, json.dumps("applicant-text"), 422, "body", "must be a JSON object", "applicant-text"
    ),
    "wrong-content-type": Case(PREDICT, one(), 415, None, None, None, content_type="text/plain"),
    "form-content-type": Case(
        PREDICT, "age=35", 415, None, None, "age=35", content_type="application/x-www-form-urlencoded"
    ),
    "no-content-type": Case(PREDICT, one(), 415, None, None, None, content_type=""),
    "batch-empty": Case(
        BATCH, '{"applications": []}', 422, "applications", "must contain at least 1 application", None
    ),
    "batch-over-cap": Case(
        BATCH,
        json.dumps({"applications": [APPROVED] * 6}),
        413,
        "applications",
        "must contain at most 5 applications",
        None,
    ),
    "batch-bad-row": Case(
        BATCH,
        json.dumps({"applications": [APPROVED, applicant(age=17.5)]}),
        422,
        "applications.1.age",
        AGE_RULE,
        "17.5",
    ),
    "batch-row-not-object": Case(
        BATCH,
        json.dumps({"applications": [APPROVED, "not-an-applicant"]}),
        422,
        "applications.1",
        "must be a JSON object",
        "not-an-applicant",
    ),
    "batch-not-a-list": Case(
        BATCH, json.dumps({"applications": APPROVED}), 422, "applications", "must be a JSON array", "MORTGAGE"
    ),
    "batch-missing-key": Case(BATCH, "{}", 422, "applications", "is required", None),
    "batch-extra-key": Case(
        BATCH,
        json.dumps({"applications": [APPROVED], "callback": "https://evil.example"}),
        422,
        "callback",
        "is not an allowed field",
        "evil.example",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_a_4xx_problem_naming_field_and_rule(
    client: TestClient, upstream: respx.MockRouter, case: Case
) -> None:
    headers = {"content-type": case.content_type} if case.content_type else {}

    response = client.post(case.url, content=case.body.encode(), headers=headers)

    assert response.status_code == case.status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == case.status
    assert problem["instance"] == case.url
    assert problem["title"]
    if case.field is not None:
        assert {"field": case.field, "rule": case.rule} in problem["errors"]
    if case.leaked is not None:
        assert case.leaked not in response.text
    assert "input" not in problem
    assert "ctx" not in problem
    assert upstream["invocations"].call_count == 0


def test_an_integral_float_is_an_integer_as_json_schema_says(
    client: TestClient, upstream: respx.MockRouter
) -> None:
    # NB: the OpenAPI document types age as an integer, and JSON Schema counts 36.0 as one.
    response = client.post(PREDICT, content=one(age=36.0, derogatory_marks=2.0).encode(), headers=JSON)

    assert response.status_code == 200
    sent = json.loads(upstream["invocations"].calls.last.request.content)["dataframe_split"]
    row = dict(zip(sent["columns"], sent["data"][0], strict=True))
    assert (row["age"], row["derogatory_marks"]) == (36, 2)
    assert isinstance(row["age"], int)


def test_every_error_of_a_body_is_reported(client: TestClient) -> None:
    response = client.post(PREDICT, json={**without("age"), "income": -1, "home_ownership": "CASTLE"})

    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"age", "income", "home_ownership"}
