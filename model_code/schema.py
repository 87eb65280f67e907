"""The applicant schema: the single source of truth every other stage derives from.

Training, the synthetic generator, preprocessing, the MLflow signature, the pyfunc's input
checks and the facade's request model are all built from ``FEATURES`` below. This module is
stdlib-only on purpose: the facade imports it without mlflow, pandas or scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

Kind = Literal["integer", "number", "category"]


@dataclass(frozen=True)
class Feature:
    """One applicant field: its type, its allowed values and what it means."""

    name: str
    kind: Kind
    description: str
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = field(default=())
    unit: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.kind != "category"

    def rule(self) -> str:
        """The rule a value must follow, in words (never mentions a submitted value)."""
        if self.kind == "category":
            return "must be one of " + ", ".join(self.categories)
        noun = "an integer" if self.kind == "integer" else "a finite number"
        return f"must be {noun} between {_fmt(self.minimum)} and {_fmt(self.maximum)}"

    def violation(self, value: object) -> str | None:
        """Return the broken rule for ``value``, or None when the value is allowed.

        Booleans are refused for numeric fields although ``bool`` subclasses ``int``: a JSON
        ``true`` for an age is a client bug, not an age of 1.
        """
        if self.kind == "category":
            return None if isinstance(value, str) and value in self.categories else self.rule()
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.rule()
        if isinstance(value, float) and not math.isfinite(value):
            return self.rule()
        if self.kind == "integer" and isinstance(value, float) and not value.is_integer():
            return self.rule()
        assert self.minimum is not None and self.maximum is not None
        if not self.minimum <= value <= self.maximum:
            return self.rule()
        return None


def _fmt(bound: float | None) -> str:
    if bound is None:
        return "unbounded"
    return f"{bound:,.0f}" if float(bound).is_integer() else f"{bound:,}"


LOAN_INTENTS: Final = (
    "PERSONAL",
    "EDUCATION",
    "MEDICAL",
    "VENTURE",
    "HOMEIMPROVEMENT",
    "DEBTCONSOLIDATION",
)
HOME_OWNERSHIPS: Final = ("RENT", "OWN", "MORTGAGE", "OTHER")

FEATURES: Final[tuple[Feature, ...]] = (
    Feature("age", "integer", "Applicant age in years.", 18, 100, unit="years"),
    Feature(
        "income",
        "number",
        "Gross annual income.",
        0,
        10_000_000,
        unit="currency units per year",
    ),
    Feature(
        "employment_length",
        "integer",
        "Years with the current employer.",
        0,
        60,
        unit="years",
    ),
    Feature(
        "loan_amount",
        "number",
        "Requested loan principal.",
        500,
        1_000_000,
        unit="currency units",
    ),
    Feature(
        "loan_intent",
        "category",
        "What the loan is for.",
        categories=LOAN_INTENTS,
    ),
    Feature(
        "home_ownership",
        "category",
        "Housing situation.",
        categories=HOME_OWNERSHIPS,
    ),
    Feature(
        "credit_history_length",
        "integer",
        "Years since the first credit line was opened.",
        0,
        80,
        unit="years",
    ),
    Feature(
        "num_credit_lines",
        "integer",
        "Open credit lines (cards, loans).",
        0,
        100,
    ),
    Feature(
        "derogatory_marks",
        "integer",
        "Derogatory public records and serious delinquencies.",
        0,
        50,
    ),
    Feature(
        "total_debt",
        "number",
        "Outstanding debt before this loan.",
        0,
        10_000_000,
        unit="currency units",
    ),
)

FEATURES_BY_NAME: Final = {f.name: f for f in FEATURES}
FEATURE_NAMES: Final = tuple(f.name for f in FEATURES)
NUMERIC_FEATURES: Final = tuple(f.name for f in FEATURES if f.is_numeric)
CATEGORICAL_FEATURES: Final = tuple(f.name for f in FEATURES if not f.is_numeric)

APPROVED: Final = "APPROVED"
REJECTED: Final = "REJECTED"

# NB: the pyfunc's output columns, in order; the facade maps them to its response schema.
OUTPUT_COLUMNS: Final = (
    "prediction",
    "approval_probability",
    "rejection_probability",
    "risk_score",
    "confidence",
    "credit_score",
    "reasons",
    "model_run_id",
)

# The README's two applicants: the first is a clear approval, the second a clear rejection
# under the generator's risk model; tests hold every trained model to that.
EXAMPLE_APPLICANTS: Final[dict[str, dict[str, object]]] = {
    "approved": {
        "age": 35,
        "income": 75000.0,
        "employment_length": 8,
        "loan_amount": 15000.0,
        "loan_intent": "HOMEIMPROVEMENT",
        "home_ownership": "MORTGAGE",
        "credit_history_length": 12,
        "num_credit_lines": 5,
        "derogatory_marks": 0,
        "total_debt": 12000.0,
    },
    "rejected": {
        "age": 22,
        "income": 18000.0,
        "employment_length": 0,
        "loan_amount": 25000.0,
        "loan_intent": "VENTURE",
        "home_ownership": "RENT",
        "credit_history_length": 1,
        "num_credit_lines": 1,
        "derogatory_marks": 4,
        "total_debt": 30000.0,
    },
}


def violations(record: Mapping[str, object]) -> list[tuple[str, str]]:
    """Every (field, rule) that ``record`` breaks: missing, unknown or disallowed values."""
    problems = [(f.name, "is required") for f in FEATURES if f.name not in record]
    problems += [(name, "is not an applicant field") for name in record if name not in FEATURES_BY_NAME]
    for name, value in record.items():
        feature = FEATURES_BY_NAME.get(name)
        if feature is not None and (rule := feature.violation(value)) is not None:
            problems.append((name, rule))
    return problems
