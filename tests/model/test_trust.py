"""Decisions people can trust: exact reason codes, score points, calibration, fairness, drift."""

from __future__ import annotations

import itertools
import math
from typing import cast

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import Pipeline

from model_code.drift import PSI_SIGNIFICANT, psi_by_feature
from model_code.fast import FastPipeline
from model_code.pyfunc import decide, principal_reasons
from model_code.reasons import REASONS, SCORE_MAX, SCORE_MIN, credit_score, reason_for_column
from model_code.schema import EXAMPLE_APPLICANTS
from model_code.validation import validate
from training.calibrate import calibrate
from training.data import TARGET, generate_applicants
from training.fairness import AGE_BANDS, fairness_report
from training.reference import drift_reference
from training.train import Splits, build_pipeline, fit, split


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    return cast("list[dict[str, object]]", frame.to_dict("records"))


def _applicants(n: int, seed: int) -> pd.DataFrame:
    return generate_applicants(n, seed=seed).drop(columns=[TARGET])


def test_base_plus_contributions_reproduce_the_probability(small_pipeline: Pipeline) -> None:
    applicants = validate(_applicants(2000, seed=3))

    explanation = FastPipeline(small_pipeline).explain(applicants)

    expected = small_pipeline.predict_proba(applicants.to_frame())[:, 1]
    np.testing.assert_array_equal(explanation.risk, expected)
    np.testing.assert_allclose(explanation.base + explanation.contributions.sum(axis=1), expected, atol=1e-12)


def test_reasons_are_deterministic_ranked_and_at_most_four(small_pipeline: Pipeline) -> None:
    applicants = validate(_applicants(300, seed=4))
    fast = FastPipeline(small_pipeline)

    first = principal_reasons(fast.explain(applicants).contributions)
    again = principal_reasons(FastPipeline(small_pipeline).explain(applicants).contributions)

    assert first == again
    for reasons in first:
        assert len(reasons) <= 4
        contributions = [r["contribution"] for r in reasons]
        assert contributions == sorted(contributions, reverse=True)
        assert all(c > 0 for c in contributions)
        assert {r["code"] for r in reasons} <= {r.code for r in REASONS}


def test_readme_rejected_applicant_gets_sensible_reasons(small_pipeline: Pipeline) -> None:
    applicants = validate(pd.DataFrame([EXAMPLE_APPLICANTS["rejected"]]))

    (reasons,) = principal_reasons(FastPipeline(small_pipeline).explain(applicants).contributions)

    codes = [r["code"] for r in reasons]
    assert len(codes) == 4
    # 25,000 asked on 18,000 a year with 30,000 of debt and 4 derogatory marks.
    assert {"LOAN_TO_INCOME", "DEBT_TO_INCOME", "TOTAL_OBLIGATIONS_TO_INCOME", "DEROGATORY_MARKS"} & set(
        codes[:2]
    )


def test_every_encoded_column_has_a_reason(small_pipeline: Pipeline) -> None:
    for column in small_pipeline.named_steps["preprocess"].get_feature_names_out():
        assert reason_for_column(column) in {r.code for r in REASONS}


def test_score_points_follow_the_documented_scale() -> None:
    # 600 points at 50:1 good:bad odds, +20 points when the odds double.
    assert credit_score(1 / 51) == 600
    assert credit_score(1 / 101) == 620
    assert credit_score(1 / 26) == 580
    assert credit_score(0.999999) == SCORE_MIN
    assert credit_score(1e-9) == SCORE_MAX
    probabilities = np.linspace(0.0, 1.0, 2001)
    scores = [credit_score(p) for p in probabilities]
    assert all(a >= b for a, b in itertools.pairwise(scores))
    odds = (1 - 0.2) / 0.2
    assert credit_score(0.2) == round(600 + 20 / math.log(2) * (math.log(odds) - math.log(50)))


def test_decide_reports_score_points_per_row() -> None:
    out = decide(np.array([1 / 51, 0.5]), threshold=0.5)

    assert out["credit_score"].tolist() == [600, credit_score(0.5)]


def test_calibration_lowers_the_brier_score_of_a_miscalibrated_forest() -> None:
    """Class weighting pushes a forest's probabilities up; calibration on held-out rows fixes that."""
    frame = generate_applicants(12_000, seed=21)
    splits = split(frame, seed=21)
    pipeline = build_pipeline(40, 12, 5, seed=21)
    pipeline.set_params(model__class_weight="balanced")
    pipeline = fit(pipeline, splits.train)
    test = (Splits.features(splits.test), splits.test[TARGET].to_numpy())
    before = brier_score_loss(test[1], pipeline.predict_proba(test[0])[:, 1])

    result = calibrate(
        pipeline, (Splits.features(splits.validation), splits.validation[TARGET].to_numpy()), test, "auto", 21
    )

    assert result.applied
    # A new pipeline: the one passed in is left uncalibrated.
    assert brier_score_loss(test[1], pipeline.predict_proba(test[0])[:, 1]) == before
    pipeline = result.pipeline
    after = brier_score_loss(test[1], pipeline.predict_proba(test[0])[:, 1])
    assert after < before
    assert result.metrics["test_brier_calibrated"] == pytest.approx(after)
    assert result.metrics["test_ece_calibrated"] < result.metrics["test_ece_uncalibrated"]
    # The fast path follows the calibrated pipeline exactly, reasons included.
    applicants = validate(test[0])
    explanation = FastPipeline(pipeline).explain(applicants)
    np.testing.assert_array_equal(explanation.risk, pipeline.predict_proba(applicants.to_frame())[:, 1])
    np.testing.assert_allclose(
        explanation.base + explanation.contributions.sum(axis=1), explanation.risk, atol=1e-12
    )


def test_fairness_table_covers_the_age_bands(small_pipeline: Pipeline) -> None:
    frame = generate_applicants(8000, seed=13)
    risk = small_pipeline.predict_proba(frame.drop(columns=[TARGET]))[:, 1]

    report = fairness_report(frame["age"], frame[TARGET].to_numpy(), risk, 0.5)

    assert list(report.table.index) == [label for _, _, label in AGE_BANDS]
    assert {"approval_rate", "true_positive_rate", "false_positive_rate", "count", "in_gaps"} <= set(
        report.table
    )
    assert 0.0 <= report.demographic_parity_difference <= 1.0
    assert 0.0 <= report.equalized_odds_difference <= 1.0
    assert "| 18-25 |" in report.markdown()


def test_psi_is_near_zero_for_like_traffic_and_large_for_shifted_traffic(small_pipeline: Pipeline) -> None:
    train = _applicants(8000, seed=1)
    reference = drift_reference(train, small_pipeline.predict_proba(_applicants(4000, seed=2))[:, 1])

    like = _applicants(2000, seed=3)
    like_rows = records(like.assign(risk_score=small_pipeline.predict_proba(like)[:, 1]))
    shifted = like.assign(income=like.income / 3, derogatory_marks=like.derogatory_marks + 3)
    shifted_rows = records(shifted.assign(risk_score=small_pipeline.predict_proba(shifted)[:, 1]))

    stable = psi_by_feature(reference, like_rows)
    drifted = psi_by_feature(reference, shifted_rows)

    assert max(stable.values()) < 0.1
    assert drifted["income"] > PSI_SIGNIFICANT
    assert drifted["derogatory_marks"] > PSI_SIGNIFICANT
    assert drifted["risk_score"] > PSI_SIGNIFICANT
