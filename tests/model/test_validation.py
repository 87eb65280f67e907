"""The pyfunc's input checks: every schema rule enforced, messages name fields and never values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from model_code.contract import OUTPUT_COLUMNS
from model_code.fast import FastPipeline
from model_code.pyfunc import CreditScoreModel, InvalidApplicantData, model_input
from model_code.schema import EXAMPLE_APPLICANTS

GOOD = EXAMPLE_APPLICANTS["approved"]


@pytest.fixture
def model(small_pipeline) -> CreditScoreModel:  # type: ignore[no-untyped-def]
    m = CreditScoreModel()
    m.pipeline, m.threshold, m.run_id = small_pipeline, 0.5, "0" * 32
    m.fast, m.inference = FastPipeline(small_pipeline), "fast"
    return m


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("age", 35.5, "must be an integer between 18 and 100"),
        ("age", 17, "must be an integer between 18 and 100"),
        ("age", None, "must be an integer between 18 and 100"),
        ("age", "35", "must be an integer between 18 and 100"),
        ("age", True, "must be an integer between 18 and 100"),
        ("income", float("nan"), "must be a finite number between 0 and 10,000,000"),
        ("income", float("inf"), "must be a finite number between 0 and 10,000,000"),
        ("income", -1.0, "must be a finite number between 0 and 10,000,000"),
        ("loan_amount", 499.0, "must be a finite number between 500 and 1,000,000"),
        ("derogatory_marks", 51, "must be an integer between 0 and 50"),
        ("loan_intent", "CASINO", "must be one of PERSONAL, EDUCATION"),
        ("loan_intent", "personal", "must be one of PERSONAL, EDUCATION"),
        ("home_ownership", None, "must be one of RENT, OWN, MORTGAGE, OTHER"),
    ],
)
def test_forbidden_values_raise_invalid_parameter_naming_field_and_rule(
    model: CreditScoreModel, field: str, value: object, rule: str
) -> None:
    rows = pd.DataFrame([GOOD, {**GOOD, field: value}])

    with pytest.raises(MlflowException) as caught:
        model.predict(None, rows)  # type: ignore[arg-type]

    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert f"{field} {rule}" in caught.value.message
    assert "(row 1)" in caught.value.message
    if value is not None:
        assert repr(value).strip("'") not in caught.value.message.replace(rule, "")


def test_missing_field_is_named(model: CreditScoreModel) -> None:
    with pytest.raises(MlflowException, match="total_debt is required"):
        model.predict(None, pd.DataFrame([{k: v for k, v in GOOD.items() if k != "total_debt"}]))  # type: ignore[arg-type]


def test_message_keeps_clear_of_the_data_when_mlflow_rewrites_it(model: CreditScoreModel) -> None:
    with pytest.raises(InvalidApplicantData) as caught:
        model.predict(None, pd.DataFrame([{**GOOD, "age": 1234}]))  # type: ignore[arg-type]

    # NB: this is what MLflow's scoring server does to the exception before serialising it.
    caught.value.message = f"Failed to predict data '{GOOD}'. \nError: {caught.value.message}"

    assert "75000" not in caught.value.serialize_as_json()
    assert "age must be an integer" in caught.value.serialize_as_json()


def test_valid_rows_score_whatever_their_numeric_dtypes(model: CreditScoreModel) -> None:
    ints = pd.DataFrame([GOOD, EXAMPLE_APPLICANTS["rejected"]])

    out_ints = model.predict(None, ints)  # type: ignore[arg-type]
    out_floats = model.predict(None, model_input(ints))  # type: ignore[arg-type]

    pd.testing.assert_frame_equal(out_ints, out_floats)
    assert out_ints["model_run_id"].tolist() == ["0" * 32] * 2


def test_row_and_column_checks_agree_on_every_rule() -> None:
    """Small inputs are checked value by value, large ones column-wise: same verdicts, same messages."""
    from model_code.validation import InvalidApplicants, _validate_columns, _validate_rows

    rows = [dict(GOOD) for _ in range(12)]
    rows[1]["age"] = 35.5
    rows[2]["income"] = None
    rows[3]["loan_intent"] = "CASINO"
    rows[4]["derogatory_marks"] = True
    rows[5]["total_debt"] = float("inf")
    rows[6]["num_credit_lines"] = "3"
    frame = pd.DataFrame(rows)

    messages = []
    for check in (_validate_rows, _validate_columns):
        with pytest.raises(InvalidApplicants) as caught:
            check(frame)
        messages.append(str(caught.value))

    assert messages[0] == messages[1]
    good = model_input(pd.DataFrame([GOOD, EXAMPLE_APPLICANTS["rejected"]]))
    by_rows, by_columns = _validate_rows(good), _validate_columns(good)
    np.testing.assert_array_equal(by_rows.numeric, by_columns.numeric)
    np.testing.assert_array_equal(by_rows.codes, by_columns.codes)


def test_output_columns_are_the_documented_ones_in_order(model: CreditScoreModel) -> None:
    out = model.predict(None, pd.DataFrame([GOOD]))  # type: ignore[arg-type]

    assert list(out.columns) == list(OUTPUT_COLUMNS)
