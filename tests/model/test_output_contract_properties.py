"""Property: any application the API accepts gets probabilities in [0, 1] that sum to 1, every time.

Runs the real pyfunc (``model_code.pyfunc.CreditScoreModel``) in-process on a small fitted
pipeline, with applications generated from ``model_code.schema.FEATURES`` (bounds, categories),
and reads its answer with the facade's own parser of scoring-server rows.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facade.contract import ScoredRow
from facade.schemas import ApplicationIn
from model_code.fast import FastPipeline
from model_code.pyfunc import CreditScoreModel, model_input
from model_code.schema import EXAMPLE_APPLICANTS, FEATURES, Feature

THRESHOLD = 0.5
PROBABILITIES = ["approval_probability", "rejection_probability", "risk_score", "confidence"]


def feature_values(feature: Feature) -> st.SearchStrategy[Any]:
    if feature.kind == "category":
        return st.sampled_from(feature.categories)
    assert feature.minimum is not None
    assert feature.maximum is not None
    if feature.kind == "integer":
        return st.integers(int(feature.minimum), int(feature.maximum))
    return st.floats(feature.minimum, feature.maximum, allow_nan=False, allow_infinity=False)


applications = st.fixed_dictionaries({f.name: feature_values(f) for f in FEATURES})


@pytest.fixture(scope="module")
def model(small_pipeline) -> CreditScoreModel:  # type: ignore[no-untyped-def]
    m = CreditScoreModel()
    m.pipeline, m.threshold, m.run_id = small_pipeline, THRESHOLD, "0" * 32
    m.fast, m.inference = FastPipeline(small_pipeline), "fast"
    return m


def score(model: CreditScoreModel, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = model.predict(None, model_input(rows))  # type: ignore[arg-type]
    return cast("list[dict[str, Any]]", out.to_dict(orient="records"))


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(application=applications)
def test_any_valid_application_gets_coherent_deterministic_probabilities(
    model: CreditScoreModel, application: dict[str, Any]
) -> None:
    ApplicationIn.model_validate(application)  # NB: the generator only makes what the API accepts

    (row,) = score(model, [application])

    parsed = ScoredRow.model_validate(row)  # the facade's own reading of a scoring-server row
    assert all(0.0 <= row[name] <= 1.0 for name in PROBABILITIES)
    assert row["approval_probability"] + row["rejection_probability"] == pytest.approx(1.0, abs=1e-12)
    assert row["risk_score"] == row["rejection_probability"]
    rejected = row["rejection_probability"] >= THRESHOLD
    assert parsed.prediction == ("REJECTED" if rejected else "APPROVED")
    assert row["confidence"] == max(row["approval_probability"], row["rejection_probability"]) or (
        row["confidence"] == row["rejection_probability"] and rejected
    )
    # Deterministic: the same answer again, and the same decision and probabilities inside a batch.
    assert score(model, [application]) == [row]
    in_batch = score(model, [EXAMPLE_APPLICANTS["rejected"], application])[1]
    assert [in_batch[k] for k in ["prediction", *PROBABILITIES]] == [
        row[k] for k in ["prediction", *PROBABILITIES]
    ]


def test_each_column_of_the_answer_changes_alone(model: CreditScoreModel) -> None:
    # NB: the answer's frame takes the model's arrays without copying them; a data scientist who
    # edits one column of it must not find another column edited too.
    answer = model.predict(None, model_input(list(EXAMPLE_APPLICANTS.values())))  # type: ignore[arg-type]
    before = answer.copy()

    answer.loc[0, "risk_score"] = 0.123
    answer.loc[1, "approval_probability"] = 0.456

    assert answer["risk_score"].tolist() == [0.123, before["risk_score"].tolist()[1]]
    assert answer.drop(columns=["risk_score", "approval_probability"]).equals(
        before.drop(columns=["risk_score", "approval_probability"])
    )
