"""The credit policy in-process: directions declared once, the constraints built from them, the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from model_code.fast import FastPipeline, encoded_feature_names
from model_code.preprocessing import MonotoneIndex
from model_code.schema import (
    CONSTRAINED_FEATURES,
    ELDERLY_AGE,
    FEATURES,
    FEATURES_BY_NAME,
    RATIOS,
    Feature,
    Ratio,
    Reason,
    Step,
)
from model_code.validation import validate
from training.calibrate import calibrate
from training.data import TARGET, generate_applicants
from training.policy import Scorer, policy_report
from training.train import Splits, build_pipeline, fit, monotonic_constraints, split

REASON = Reason("X", "x")


def served(pipeline: Pipeline) -> Scorer:
    fast = FastPipeline(pipeline)
    return lambda applicants: fast.explain(validate(applicants)).risk


def _test_split() -> pd.DataFrame:
    return generate_applicants(1500, seed=17).drop(columns=[TARGET])


def test_the_issue_directions_are_declared_on_the_fields() -> None:
    directions = {f.name: f.direction for f in FEATURES}

    assert directions == {
        "age": "none",
        "income": "down",
        "employment_length": "down",
        "loan_amount": "up",
        "loan_intent": "none",
        "home_ownership": "none",
        "credit_history_length": "down",
        "num_credit_lines": "none",
        "derogatory_marks": "up",
        "total_debt": "up",
    }
    assert not FEATURES_BY_NAME["age"].scored


def test_ratios_inherit_the_direction_their_inputs_agree_on() -> None:
    # Debt up raises the ratio and the risk; income up lowers the ratio and the risk: "up" keeps both.
    assert {r.name: r.direction for r in RATIOS} == dict.fromkeys(
        ("debt_to_income", "loan_to_income", "total_debt_with_loan_to_income"), "up"
    )


def test_a_ratio_whose_inputs_need_opposite_directions_is_refused() -> None:
    # Debt over the loan, both "up": more debt needs the ratio "up", a bigger loan lowers it and so
    # needs it "down".
    with pytest.raises(ValueError, match="cannot all hold"):
        Ratio("debt_to_loan", "", ("total_debt",), ("loan_amount",), REASON)
    # History ("down") over debt ("up") is sound: both need the ratio "down".
    sound = Ratio("history_to_debt", "", ("credit_history_length",), ("total_debt",), REASON)
    assert sound.direction == "down"
    with pytest.raises(ValueError, match="not a scored numeric field"):
        Ratio("history_to_age", "", ("credit_history_length",), ("age",), REASON)


def test_a_direction_comes_with_a_step_and_only_on_a_scored_number() -> None:
    with pytest.raises(ValueError, match="policy step"):
        Feature("x", "number", "", 0, 1, reason=REASON, direction="up")
    with pytest.raises(ValueError, match="scored numeric"):
        Feature("x", "category", "", categories=("A",), reason=REASON, direction="up", step=Step(offset=1))
    with pytest.raises(ValueError, match="scored numeric"):
        Feature("x", "number", "", 0, 1, reason=None, direction="down", step=Step(factor=2))
    with pytest.raises(ValueError, match="whole offsets"):
        Feature("x", "integer", "", 0, 9, reason=REASON, direction="up", step=Step(offset=0.5))
    with pytest.raises(ValueError, match="either by a factor"):
        Step(factor=1.5, offset=1)


def test_the_forest_is_constrained_along_every_column_a_direction_reaches() -> None:
    constraints = dict(zip(encoded_feature_names(), monotonic_constraints(), strict=True))

    assert constraints == {
        "income": -1,
        "employment_length": -1,
        "loan_amount": 1,
        "credit_history_length": -1,
        "num_credit_lines": 0,
        "derogatory_marks": 1,
        "total_debt": 1,
        "debt_to_income": 1,
        "loan_to_income": 1,
        "total_debt_with_loan_to_income": 1,
        **{f"{f.name}_{c}": 0 for f in FEATURES for c in f.categories},
    }


def test_the_monotone_index_weighs_each_column_with_its_direction(small_pipeline: Pipeline) -> None:
    index: MonotoneIndex = small_pipeline.named_steps["index"]
    signs = monotonic_constraints()

    assert index.columns_.size > 0
    for column, weight in zip(index.columns_, index.weights_, strict=True):
        assert np.sign(weight) == signs[column]
    assert list(small_pipeline.named_steps["model"].monotonic_cst) == [*signs, 1]


def test_the_constrained_model_passes_the_gate(small_pipeline: Pipeline) -> None:
    report = policy_report(served(small_pipeline), _test_split())

    assert report.violations == 0
    assert report.problem() is None
    assert [check.field for check in report.fields] == [f.name for f in CONSTRAINED_FEATURES]
    assert all(check.moved > 1000 for check in report.fields)
    assert report.metrics() == {
        **{f"policy_wrong_way_{f.name}": 0.0 for f in CONSTRAINED_FEATURES},
        "policy_elderly_worse_than_61": 0.0,
    }


def test_the_gate_counts_the_wrong_way_moves_of_an_unconstrained_forest() -> None:
    frame = generate_applicants(6000, seed=7)
    twin = fit(build_pipeline(40, 12, 5, seed=7, constrained=False), split(frame, seed=7).train)

    report = policy_report(served(twin), _test_split())

    assert all(check.wrong_way > 0 for check in report.fields)
    assert report.problem() is not None
    assert "income (" in report.problem()  # type: ignore[operator]
    assert report.elderly_worse_than_61 == 0  # age is not scored, constrained or not
    table = report.markdown()
    assert "| `income` | never rises | ×1.5 | 1,500 |" in table


def test_the_gate_counts_elderly_applicants_scored_worse_than_at_61() -> None:
    applicants = _test_split()

    def ageist(frame: pd.DataFrame) -> np.ndarray:
        # Worse from 70 on, for applicants who borrow more than 10,000.
        return 0.2 + 0.1 * ((frame["age"] >= 70) & (frame["loan_amount"] > 10_000)).to_numpy(float)

    report = policy_report(ageist, applicants)

    assert report.elderly_worse_than_61 == int((applicants["loan_amount"] > 10_000).sum()) > 0
    assert report.elderly_ages == (ELDERLY_AGE, 100)
    assert "elderly scored worse than at 61" in str(report.problem())


def test_a_sigmoid_that_falls_with_the_forest_is_never_shipped(small_pipeline: Pipeline) -> None:
    splits = split(generate_applicants(3000, seed=23), seed=23)
    validation = (Splits.features(splits.validation), 1 - splits.validation[TARGET].to_numpy())
    test = (Splits.features(splits.test), splits.test[TARGET].to_numpy())

    result = calibrate(small_pipeline, validation, test, "sigmoid", seed=23)

    assert not result.applied
    assert result.pipeline is small_pipeline
    assert "does not rise" in result.reason


def test_the_index_share_of_a_decision_goes_back_to_the_fields_it_is_made_of(
    small_pipeline: Pipeline,
) -> None:
    applicants = validate(_test_split())
    fast = FastPipeline(small_pipeline)

    explanation = fast.explain(applicants)
    _, _, by_column = fast.forest.contributions(fast.features(applicants))

    # The forest did split on the index, and the reasons still add up to the probability exactly.
    assert np.abs(by_column[:, -1]).max() > 0.01
    np.testing.assert_allclose(
        explanation.base + explanation.contributions.sum(axis=1), explanation.risk, atol=1e-12
    )
