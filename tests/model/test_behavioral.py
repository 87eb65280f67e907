"""Behavioural tests of a trained model: directions of effect and the README's two applicants."""

from __future__ import annotations

import pandas as pd
from sklearn.pipeline import Pipeline

from model_code.contract import APPROVED, REJECTED
from model_code.pyfunc import decide
from model_code.schema import EXAMPLE_APPLICANTS
from training.data import TARGET, generate_applicants


def score(pipeline: Pipeline, applicants: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Decisions through the scikit-learn pipeline (the reference path; class 1 is default)."""
    return pd.DataFrame(decide(pipeline.predict_proba(applicants)[:, 1].astype("float64"), threshold))


def _mean_risk(pipeline: Pipeline, frame: pd.DataFrame) -> float:
    return float(pipeline.predict_proba(frame)[:, 1].mean())


def _population() -> pd.DataFrame:
    return generate_applicants(2000, seed=123).drop(columns=[TARGET])


def test_more_derogatory_marks_raise_the_mean_risk(small_pipeline: Pipeline) -> None:
    base = _population()

    assert _mean_risk(small_pipeline, base.assign(derogatory_marks=4)) > _mean_risk(
        small_pipeline, base.assign(derogatory_marks=0)
    )


def test_higher_income_lowers_the_mean_risk(small_pipeline: Pipeline) -> None:
    base = _population()

    assert _mean_risk(small_pipeline, base.assign(income=base.income * 2)) < _mean_risk(small_pipeline, base)


def test_more_debt_raises_the_mean_risk(small_pipeline: Pipeline) -> None:
    base = _population()

    assert _mean_risk(small_pipeline, base.assign(total_debt=base.total_debt * 3 + 20_000)) > _mean_risk(
        small_pipeline, base
    )


def test_readme_applicants_are_approved_and_rejected(small_pipeline: Pipeline) -> None:
    applicants = pd.DataFrame([EXAMPLE_APPLICANTS["approved"], EXAMPLE_APPLICANTS["rejected"]])

    out = score(small_pipeline, applicants, threshold=0.5)

    assert out["prediction"].tolist() == [APPROVED, REJECTED]
    approved, rejected = out["rejection_probability"].tolist()
    assert approved < 0.25 < 0.75 < rejected


def test_output_columns_keep_their_documented_meaning(small_pipeline: Pipeline) -> None:
    out = score(small_pipeline, _population(), threshold=0.5)

    assert (out["risk_score"] == out["rejection_probability"]).all()
    assert ((out["approval_probability"] + out["rejection_probability"] - 1.0).abs() < 1e-12).all()
    predicted_side = out["approval_probability"].where(
        out["prediction"] == APPROVED, out["rejection_probability"]
    )
    assert (out["confidence"] == predicted_side).all()
    assert (out["confidence"] >= 0.5).all()


def test_threshold_moves_decisions(small_pipeline: Pipeline) -> None:
    population = _population()

    strict = score(small_pipeline, population, threshold=0.2)["prediction"].eq(REJECTED).mean()
    lenient = score(small_pipeline, population, threshold=0.8)["prediction"].eq(REJECTED).mean()

    assert strict > lenient
