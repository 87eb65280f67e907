"""Stage 1 of training: seeded synthetic applicants and their default labels (no real person's data).

Marginals are chosen to look like a consumer-lending book: log-normal incomes that rise with age,
loan amounts tied to the loan's intent and the applicant's income, credit history bounded by age.
The label comes from a documented latent risk model (``default_logit``), so the direction of every
effect is known and tests can hold trained models to it.

    logit P(default) = -2.0
        + 1.6 * debt_to_income                  (total_debt / income, capped at 3)
        + 2.2 * loan_to_income                  (loan_amount / income, capped at 3)
        + 0.55 * derogatory_marks               (capped at 8)
        - 0.07 * credit_history_length          (capped at 25 years)
        - 0.06 * employment_length              (capped at 20 years)
        + home_ownership effect  (RENT +0.35, OTHER +0.25, MORTGAGE -0.15, OWN -0.35)
        + loan_intent effect     (VENTURE +0.45, MEDICAL +0.25, DEBTCONSOLIDATION +0.2,
                                  EDUCATION +0.1, PERSONAL 0, HOMEIMPROVEMENT -0.2)

The intercept gives a default rate of about 25 %; the label is a Bernoulli draw from it. A schema
field the generator does not model (a field added to ``model_code.schema`` that should carry no
risk) is drawn uniformly within its bounds or categories, from a stream of its own, so that the
modelled fields and the labels stay what they were.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd

from model_code.schema import FEATURES, FEATURES_BY_NAME, HOME_OWNERSHIPS, LOAN_INTENTS, Feature

TARGET = "default"

INTERCEPT = -2.0
HOME_EFFECT = {"RENT": 0.35, "OTHER": 0.25, "MORTGAGE": -0.15, "OWN": -0.35}
INTENT_EFFECT = {
    "VENTURE": 0.45,
    "MEDICAL": 0.25,
    "DEBTCONSOLIDATION": 0.2,
    "EDUCATION": 0.1,
    "PERSONAL": 0.0,
    "HOMEIMPROVEMENT": -0.2,
}
# Typical principal by intent, for an applicant earning 50,000 a year.
INTENT_LOAN_BASE = {
    "PERSONAL": 7_000.0,
    "EDUCATION": 11_000.0,
    "MEDICAL": 6_000.0,
    "VENTURE": 18_000.0,
    "HOMEIMPROVEMENT": 14_000.0,
    "DEBTCONSOLIDATION": 12_000.0,
}
INTENT_SHARE = (0.22, 0.18, 0.15, 0.12, 0.13, 0.20)


def default_logit(frame: pd.DataFrame) -> np.ndarray:
    """The latent risk model described in the module docstring, one log-odds value per row."""
    income = frame["income"].to_numpy(float).clip(min=1_000.0)
    dti = np.minimum(frame["total_debt"].to_numpy(float) / income, 3.0)
    lti = np.minimum(frame["loan_amount"].to_numpy(float) / income, 3.0)
    logit: np.ndarray = (
        INTERCEPT
        + 1.6 * dti
        + 2.2 * lti
        + 0.55 * np.minimum(frame["derogatory_marks"].to_numpy(float), 8.0)
        - 0.07 * np.minimum(frame["credit_history_length"].to_numpy(float), 25.0)
        - 0.06 * np.minimum(frame["employment_length"].to_numpy(float), 20.0)
        + frame["home_ownership"].map(HOME_EFFECT).to_numpy(float)
        + frame["loan_intent"].map(INTENT_EFFECT).to_numpy(float)
    )
    return logit


def _clip(name: str, values: np.ndarray) -> np.ndarray:
    feature = FEATURES_BY_NAME[name]
    clipped: np.ndarray = np.clip(values, feature.minimum, feature.maximum)
    return clipped


def generate_applicants(n_samples: int, seed: int) -> pd.DataFrame:
    """``n_samples`` applicants with every schema field and the ``default`` label (1 = defaulted)."""
    if n_samples < 1:
        raise ValueError("n_samples must be at least 1")
    rng = np.random.default_rng(seed)

    age = _clip("age", np.round(18 + rng.gamma(shape=2.2, scale=8.0, size=n_samples))).astype(int)
    # Income rises with age until the mid-fifties, log-normally spread around that trend.
    trend = np.log(32_000) + 0.035 * np.minimum(age - 18, 37)
    income = _clip("income", np.round(rng.lognormal(trend, 0.55), -2))
    employment_length = np.minimum(rng.geometric(p=0.18, size=n_samples) - 1, np.maximum(age - 18, 0))
    employment_length = _clip("employment_length", employment_length).astype(int)

    adult_years = np.maximum(age - 18, 0)
    credit_history_length = np.floor(adult_years * rng.beta(2.0, 1.5, size=n_samples))
    credit_history_length = _clip("credit_history_length", credit_history_length).astype(int)
    num_credit_lines = _clip("num_credit_lines", rng.poisson(1.0 + credit_history_length / 3.0)).astype(int)
    derogatory_marks = _clip("derogatory_marks", rng.negative_binomial(n=0.6, p=0.7, size=n_samples)).astype(
        int
    )

    older = (age > 30).astype(float)
    home_p = np.column_stack(
        [0.60 - 0.25 * older, 0.07 + 0.08 * older, 0.25 + 0.17 * older, np.full(n_samples, 0.08)]
    )
    home_ownership = np.array(HOME_OWNERSHIPS)[_draw_rows(rng, home_p)]
    loan_intent = rng.choice(np.array(LOAN_INTENTS), size=n_samples, p=INTENT_SHARE)

    base = pd.Series(loan_intent).map(INTENT_LOAN_BASE).to_numpy(float)
    loan_amount = base * np.sqrt(income / 50_000) * rng.lognormal(0.0, 0.5, size=n_samples)
    loan_amount = _clip("loan_amount", np.round(loan_amount, -2))
    total_debt = income * rng.lognormal(np.log(0.25), 0.8, size=n_samples)
    total_debt *= (0.5 + num_credit_lines / 6.0) * (1.0 + 0.4 * derogatory_marks)
    total_debt = _clip("total_debt", np.round(total_debt, -2))

    modelled = pd.DataFrame(
        {
            "age": age,
            "income": income.astype(float),
            "employment_length": employment_length,
            "loan_amount": loan_amount.astype(float),
            "loan_intent": loan_intent,
            "home_ownership": home_ownership,
            "credit_history_length": credit_history_length,
            "num_credit_lines": num_credit_lines,
            "derogatory_marks": derogatory_marks,
            "total_debt": total_debt.astype(float),
        }
    )
    probability = 1.0 / (1.0 + np.exp(-default_logit(modelled)))
    label = (rng.random(n_samples) < probability).astype(int)
    unmodelled = np.random.default_rng([seed, 1])
    frame = pd.DataFrame(
        {
            f.name: modelled[f.name] if f.name in modelled else _uniform(unmodelled, f, n_samples)
            for f in FEATURES
        }
    )
    frame[TARGET] = label
    return frame


def _uniform(rng: np.random.Generator, feature: Feature, n_samples: int) -> np.ndarray:
    """Values of a field the risk model ignores: uniform over its categories or its bounds."""
    if feature.kind == "category":
        drawn: np.ndarray = rng.choice(np.array(feature.categories), size=n_samples)
        return drawn
    assert feature.minimum is not None
    assert feature.maximum is not None
    if feature.kind == "integer":
        return rng.integers(int(feature.minimum), int(feature.maximum), size=n_samples, endpoint=True)
    return np.round(rng.uniform(feature.minimum, feature.maximum, size=n_samples), 2)


def _draw_rows(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One categorical draw per row, each row with its own probabilities."""
    cumulative = np.cumsum(probabilities / probabilities.sum(axis=1, keepdims=True), axis=1)
    drawn: np.ndarray = (rng.random((len(probabilities), 1)) > cumulative).sum(axis=1)
    return drawn


# NB: no defaults here: the MLproject's generate_data entry point is their one home.
@click.command()
@click.option("--n-samples", type=click.IntRange(min=100), required=True)
@click.option("--seed", type=int, required=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(n_samples: int, seed: int, output: Path) -> None:
    """Write synthetic applicants to a CSV file (the MLproject's generate_data entry point)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    frame = generate_applicants(n_samples, seed)
    frame.to_csv(output, index=False)
    click.echo(
        f"[data] {len(frame):,} synthetic applicants, default rate "
        f"{frame[TARGET].mean():.1%}, written to {output}"
    )


if __name__ == "__main__":
    main()
