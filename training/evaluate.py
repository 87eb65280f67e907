"""Stage 3 of training: test-split metrics and the diagnostic plots logged as PNG artifacts."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # NB: headless machines and CI have no display.

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    RocCurveDisplay,
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import Pipeline

from training.calibrate import forest_of


def ks_statistic(y_true: np.ndarray, risk: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the defaulters' and payers' score CDFs."""
    fpr, tpr, _ = roc_curve(y_true, risk)
    return float(np.max(tpr - fpr))


def classification_metrics(y_true: np.ndarray, risk: np.ndarray, threshold: float) -> dict[str, float]:
    """Metrics on the probability of default; the positive class is 'defaulted' (REJECTED)."""
    predicted = (risk >= threshold).astype(int)
    auc = float(roc_auc_score(y_true, risk))
    return {
        "roc_auc": auc,
        "gini": 2.0 * auc - 1.0,
        "ks": ks_statistic(y_true, risk),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "log_loss": float(log_loss(y_true, risk, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, risk)),
    }


def write_plots(
    pipeline: Pipeline, y_true: np.ndarray, risk: np.ndarray, threshold: float, folder: Path
) -> list[Path]:
    """ROC curve, calibration curve, confusion matrix and feature importance, as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(5, 5))
    RocCurveDisplay.from_predictions(y_true, risk, ax=ax, name="credit-score")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_title("ROC curve (test split)")
    paths.append(_save(fig, folder / "roc_curve.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    observed, predicted = calibration_curve(y_true, risk, n_bins=10, strategy="quantile")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.set(xlabel="Predicted probability of default", ylabel="Observed default rate")
    ax.set_title("Calibration curve (test split)")
    ax.legend()
    paths.append(_save(fig, folder / "calibration_curve.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        (risk >= threshold).astype(int),
        display_labels=["APPROVED (repaid)", "REJECTED (default)"],
        ax=ax,
        colorbar=False,
    )
    ax.set_title(f"Confusion matrix at threshold {threshold}")
    paths.append(_save(fig, folder / "confusion_matrix.png"))

    forest = forest_of(pipeline)
    names = pipeline[:-1].get_feature_names_out()
    order = np.argsort(forest.feature_importances_)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh(np.asarray(names)[order], forest.feature_importances_[order])
    ax.set_title("Feature importance (mean decrease in impurity)")
    paths.append(_save(fig, folder / "feature_importance.png"))
    return paths


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
