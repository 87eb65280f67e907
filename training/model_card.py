"""Stage 5 of training: the model card, a markdown page logged with the run and the model."""

from __future__ import annotations

from collections.abc import Mapping

from model_code.reasons import score_parameters
from model_code.schema import ELDERLY_AGE, FEATURES, FEATURES_BY_NAME, RATIOS, Direction
from training.data import INTERCEPT

# How the probability of default may move as the field's value rises.
_DIRECTION: dict[Direction, str] = {"up": "never falls", "down": "never rises", "none": "either way"}

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
    "unconstrained_test_roc_auc",
    "unconstrained_test_ks",
    "unconstrained_test_brier",
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
    policy_table: str,
    policy_violations: int,
) -> str:
    features = "\n".join(
        f"| `{f.name}` | {f.kind} | {f.description} | "
        f"{_DIRECTION[f.direction] if f.scored else 'not scored'} |"
        for f in FEATURES
    )
    ratios = ", ".join(f"`{r.name}` ({_DIRECTION[r.direction]})" for r in RATIOS)
    policy_gate = f"{policy_violations:,} (gate FAILED)" if policy_violations else "none (gate passed)"
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

| field | type | description | risk as the value rises |
| --- | --- | --- | --- |
{features}

## Model
scikit-learn Pipeline: engineered ratios ({ratios}) → ColumnTransformer (fixed-category one-hot)
→ monotone index (a linear score of the constrained columns, each weight fitted with its column's
sign) → RandomForest ({forest}) with monotonic constraints: along every field with a direction,
every ratio it enters and the index, the probability of default can only move that way, for every
applicant. Served through a fast exact evaluator equal to scikit-learn's `predict_proba`.

## Age
{_age_section()}

## Test metrics
| metric | value |
| --- | ---: |
| ROC AUC | {m["test_roc_auc"]:.4f} |
| Gini | {m["test_gini"]:.4f} |
| KS | {m["test_ks"]:.4f} |
| Brier | {m["test_brier"]:.4f} |
| log loss | {m["test_log_loss"]:.4f} |
| accuracy | {m["test_accuracy"]:.4f} |

## Credit policy (test split)
Each applicant moved one step in each field with a direction (within its bounds), and placed at 61
and at every elderly age, then scored again; a wrong-way move is a risk that moved against the
field's direction. Violations: {policy_gate}; a model with any is never
made champion automatically. The unconstrained twin (the same data, seed, hyperparameters and
calibration rule, without the constraints and the index) is shown for comparison.

{policy_table}

What the policy costs (a negative cost is a gain) on the test split:

{_cost_table(m)}

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
- Age is not scored, but income, employment and credit history correlate with it: the fairness
  table by age band shows the effect, which must be reviewed against the applicable rules (e.g.
  ECOA/Regulation B) before any real use.
- The directions are the lender's policy, imposed on the forest; on this generator they agree
  with the latent risk model. What they cost is measured on every run (the table above).
- Drift: compare live traffic with the training distribution (`credit_feature_psi`,
  `credit_score_psi`; 0.1 watch, 0.25 act).
"""


def _age_section() -> str:
    """What the model does with age, in words that stay true if the schema starts scoring it."""
    if FEATURES_BY_NAME["age"].scored:
        return (
            "Age is scored. Regulation B (12 CFR 1002.6(b)(2)) lets a scoring system use age only if\n"
            f"an elderly applicant's age ({ELDERLY_AGE} or more) is never assigned a negative value:\n"
            f"the credit policy table counts those scored worse than at {ELDERLY_AGE - 1}."
        )
    return (
        "Age is validated, and used for the fairness table and drift monitoring, but the model does not\n"
        "score it: no input reads it, so no applicant's risk depends on their age, and an elderly\n"
        f"applicant ({ELDERLY_AGE} or more) is never scored worse than the same applicant at any younger\n"
        "age. Regulation B (12 CFR 1002.6(b)(2)) lets a scoring system use age only if an elderly\n"
        "applicant's age is never assigned a negative value, and on this data age adds nothing once\n"
        "the other fields are known. `AGE` is not a reason code: the principal reasons for an adverse\n"
        "action must be factors the model scored."
    )


def _cost_table(m: Mapping[str, float]) -> str:
    """This model against its unconstrained twin; the cost is positive where the twin does better."""
    lines = ["| metric | this model | unconstrained twin | cost |", "| --- | ---: | ---: | ---: |"]
    rows = (("ROC AUC", "roc_auc", True), ("KS", "ks", True), ("Brier", "brier", False))
    for label, name, higher_is_better in rows:
        ours, twin = m[f"test_{name}"], m[f"unconstrained_test_{name}"]
        cost = twin - ours if higher_is_better else ours - twin
        lines.append(f"| {label} | {ours:.4f} | {twin:.4f} | {cost:+.4f} |")
    return "\n".join(lines)
