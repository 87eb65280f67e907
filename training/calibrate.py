"""Stage 3a of training: probability calibration, applied only when it helps on held-out rows.

A sigmoid (Platt) calibrator is fitted on the validation split over the frozen forest. Whether
the shipped model uses it is decided by 2-fold cross-fitting on the validation rows (the test
split stays untouched for reporting); Brier score and expected calibration error are reported
on the test split before and after either way, with a reliability diagram. A calibrator that
does not rise with the forest's score is never shipped: it would reverse the credit policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # NB: headless machines and CI have no display.

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

Mode = Literal["auto", "sigmoid", "none"]
MODES: tuple[Mode, ...] = ("auto", "sigmoid", "none")


def expected_calibration_error(y_true: np.ndarray, probability: np.ndarray, n_bins: int = 10) -> float:
    """Weighted mean |observed rate − mean prediction| over equal-count bins."""
    order = np.argsort(probability, kind="stable")
    error = 0.0
    for part in np.array_split(order, n_bins):
        if part.size:
            error += part.size * abs(float(y_true[part].mean()) - float(probability[part].mean()))
    return error / max(len(probability), 1)


def forest_of(pipeline: Pipeline) -> RandomForestClassifier:
    """The fitted forest, whether or not a calibrator wraps it."""
    model = pipeline.named_steps["model"]
    if isinstance(model, CalibratedClassifierCV):
        forest: RandomForestClassifier = model.calibrated_classifiers_[0].estimator.estimator
        return forest
    fitted: RandomForestClassifier = model
    return fitted


def _sigmoid_over(forest: RandomForestClassifier, x: np.ndarray, y: np.ndarray) -> CalibratedClassifierCV:
    return CalibratedClassifierCV(FrozenEstimator(forest), method="sigmoid").fit(x, y)


@dataclass(frozen=True)
class Calibration:
    """What calibration decided: the pipeline to ship, whether it is calibrated, why, and the figures.

    ``raw_test`` and ``sigmoid_test`` are the test split's risk before and under the sigmoid
    calibrator (applied or not), for the reliability diagram.
    """

    pipeline: Pipeline
    applied: bool
    reason: str
    raw_test: np.ndarray
    sigmoid_test: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)


def calibrate(
    pipeline: Pipeline,
    validation: tuple[pd.DataFrame, np.ndarray],
    test: tuple[pd.DataFrame, np.ndarray],
    mode: Mode,
    seed: int,
) -> Calibration:
    """Fit the calibrator; when ``mode`` (or the cross-fit in ``auto``) says so, ship a calibrated pipeline.

    ``pipeline`` is left as it is: the calibrated pipeline is a new one sharing its fitted steps.
    """
    encode = pipeline[:-1]
    forest = pipeline.named_steps["model"]
    x_val, y_val = encode.transform(validation[0]), validation[1]
    x_test, y_test = encode.transform(test[0]), test[1]

    raw_val = forest.predict_proba(x_val)[:, 1]
    out_of_fold = np.empty_like(raw_val)
    for fit_rows, eval_rows in StratifiedKFold(2, shuffle=True, random_state=seed).split(x_val, y_val):
        fold = _sigmoid_over(forest, x_val[fit_rows], y_val[fit_rows])
        out_of_fold[eval_rows] = fold.predict_proba(x_val[eval_rows])[:, 1]
    cross_fit_raw = float(brier_score_loss(y_val, raw_val))
    cross_fit_calibrated = float(brier_score_loss(y_val, out_of_fold))

    calibrated = _sigmoid_over(forest, x_val, y_val)
    raw_test = forest.predict_proba(x_test)[:, 1]
    calibrated_test = calibrated.predict_proba(x_test)[:, 1]
    metrics = {
        "validation_crossfit_brier_uncalibrated": cross_fit_raw,
        "validation_crossfit_brier_calibrated": cross_fit_calibrated,
        "test_brier_uncalibrated": float(brier_score_loss(y_test, raw_test)),
        "test_brier_calibrated": float(brier_score_loss(y_test, calibrated_test)),
        "test_ece_uncalibrated": expected_calibration_error(y_test, raw_test),
        "test_ece_calibrated": expected_calibration_error(y_test, calibrated_test),
    }
    (sigmoid,) = calibrated.calibrated_classifiers_[0].calibrators
    if mode == "none":
        applied, reason = False, "calibration disabled (calibration=none)"
    elif sigmoid.a_ >= 0:
        # NB: P = 1 / (1 + exp(a·score + b)) rises with the forest's score only for a < 0; any other
        # sigmoid would turn every direction of the credit policy around, so it is never shipped.
        applied, reason = False, "sigmoid calibration refused: it does not rise with the forest's risk"
    elif mode == "sigmoid":
        applied, reason = True, "sigmoid calibration forced (calibration=sigmoid)"
    else:
        applied = cross_fit_calibrated < cross_fit_raw
        verdict = "lowers" if applied else "does not lower"
        reason = (
            f"sigmoid calibration {verdict} the cross-fitted validation Brier score "
            f"({cross_fit_calibrated:.5f} vs {cross_fit_raw:.5f} uncalibrated)"
        )
    shipped = Pipeline([*pipeline.steps[:-1], ("model", calibrated)]) if applied else pipeline
    return Calibration(shipped, applied, reason, raw_test, calibrated_test, metrics)


def reliability_diagram(y_true: np.ndarray, raw: np.ndarray, calibrated: np.ndarray, path: Path) -> Path:
    """Observed default rate against predicted probability, before and after calibration."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, probability in (("forest", raw), ("sigmoid-calibrated", calibrated)):
        observed, predicted = calibration_curve(y_true, probability, n_bins=10, strategy="quantile")
        ax.plot(predicted, observed, marker="o", label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.set(xlabel="Predicted probability of default", ylabel="Observed default rate")
    ax.set_title("Reliability diagram (test split)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
