"""Stage 5 of training: the model card, a markdown page logged with the run and the model."""

from __future__ import annotations

from collections.abc import Mapping

from model_code.reasons import score_parameters
from model_code.schema import FEATURES
from training.data import INTERCEPT

_METRICS = (
    "test_roc_auc",
    "test_gini",
    "test_ks",
    "test_brier",
    "test_log_loss",
    "test_accuracy",
    "test_brier_uncalibrated",
    "test_brier_calibrated",
    "test_ece_uncalibrated",
    "test_ece_calibrated",
    "fairness_demographic_parity_difference",
    "fairness_equalized_odds_difference",
)


def model_card(
    *,
    model_name: str,
    run_id: str,
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    calibration_reason: str,
    fairness_table: str,
    fairness_gap: float,
    fairness_bound: float,
) -> str:
    features = "\n".join(f"| `{f.name}` | {f.kind} | {f.description} |" for f in FEATURES)
    scale = score_parameters()
    gate = "within" if fairness_gap <= fairness_bound else "OVER"
    m = {key: metrics.get(key, float("nan")) for key in _METRICS}
    forest = (
        f"{params.get('n_estimators')} trees, depth {params.get('max_depth')}, "
        f"min leaf {params.get('min_samples_leaf')}"
    )
    return f"""# Model card: {model_name}

Run `{run_id}`. Generated at training; the facade serves it at `/api/v1/model/card`.

## Intended use
Scoring consumer loan applications (probability of default, an APPROVED/REJECTED decision at
threshold {params.get("decision_threshold")}, score points and up to four principal reasons) to
support a human credit decision. Not for use on real applicants without validation on real
outcomes: it is trained on synthetic data.

## Data
{params.get("n_samples")} synthetic applicants from `training/data.py` (seed {params.get("seed")}): no real
person's data. Labels come from a documented latent risk model (intercept {INTERCEPT}) driven by
debt-to-income, loan-to-income, derogatory marks, credit history, employment length, home
ownership and loan intent. Split 70/10/20 (train/validation/test), stratified on the label.

| field | type | description |
| --- | --- | --- |
{features}

## Model
scikit-learn Pipeline: engineered ratios → ColumnTransformer (fixed-category one-hot) →
RandomForest ({forest}).
Served through a fast exact evaluator equal to scikit-learn's `predict_proba`.

## Test metrics
| metric | value |
| --- | ---: |
| ROC AUC | {m["test_roc_auc"]:.4f} |
| Gini | {m["test_gini"]:.4f} |
| KS | {m["test_ks"]:.4f} |
| Brier | {m["test_brier"]:.4f} |
| log loss | {m["test_log_loss"]:.4f} |
| accuracy | {m["test_accuracy"]:.4f} |

## Calibration
{calibration_reason}. Test Brier {m["test_brier_uncalibrated"]:.5f} uncalibrated,
{m["test_brier_calibrated"]:.5f} calibrated; expected calibration error
{m["test_ece_uncalibrated"]:.4f} → {m["test_ece_calibrated"]:.4f}.

## Score points
`credit_score` = {scale["score_base_points"]:.0f} points at {scale["score_base_odds"]:.0f}:1 good:bad odds,
{scale["score_points_to_double_odds"]:.0f} points to double the odds, clipped to
{scale["score_min"]:.0f}–{scale["score_max"]:.0f}.

## Fairness (test split, by age band)
{fairness_table}

Demographic parity difference {m["fairness_demographic_parity_difference"]:.3f},
equalized odds difference {m["fairness_equalized_odds_difference"]:.3f}: largest gap
{fairness_gap:.3f}, {gate} the bound {fairness_bound:.3f}. A model over the bound is never made
champion automatically.

## Limitations
- Synthetic data: the effects are those of the generator's risk model, not of a real book.
- Age is a model input; its effect is reported in the fairness table and as a reason code, and
  must be reviewed against the applicable rules (e.g. ECOA/Regulation B) before any real use.
- Drift: compare live traffic with the training distribution (`credit_feature_psi`,
  `credit_score_psi`; 0.1 watch, 0.25 act).
"""
