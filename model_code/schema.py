"""The applicant schema: the single source of truth every other stage derives from.

Training, the synthetic generator, preprocessing, the MLflow signature, the pyfunc's input
checks, the reason codes and the facade's request model are all built from ``FEATURES`` (and
the engineered ``RATIOS``) below. This module is stdlib-only on purpose: the facade imports it
without mlflow, pandas or scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Final, Literal

Kind = Literal["integer", "number", "category"]


@dataclass(frozen=True)
class Reason:
    """A stable adverse-action reason: its code and its plain-language text (``model_code.reasons``)."""

    code: str
    description: str


@dataclass(frozen=True)
class Feature:
    """One applicant field: its type, its allowed values, what it means and the reason it is reported as."""

    name: str
    kind: Kind
    description: str
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = field(default=())
    unit: str = ""
    # NB: what this field's share of the risk is called in a decision's principal reasons; its
    # one-hot columns, for a category, report under the same reason.
    reason: Reason = field(kw_only=True)

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
        assert self.minimum is not None
        assert self.maximum is not None
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
    Feature(
        "age",
        "integer",
        "Applicant age in years.",
        18,
        100,
        unit="years",
        reason=Reason("AGE", "Age of applicant"),
    ),
    Feature(
        "income",
        "number",
        "Gross annual income.",
        0,
        10_000_000,
        unit="currency units per year",
        reason=Reason("INCOME", "Income level"),
    ),
    Feature(
        "employment_length",
        "integer",
        "Years with the current employer.",
        0,
        60,
        unit="years",
        reason=Reason("EMPLOYMENT_LENGTH", "Length of employment"),
    ),
    Feature(
        "loan_amount",
        "number",
        "Requested loan principal.",
        500,
        1_000_000,
        unit="currency units",
        reason=Reason("LOAN_AMOUNT", "Amount of credit requested"),
    ),
    Feature(
        "loan_intent",
        "category",
        "What the loan is for.",
        categories=LOAN_INTENTS,
        reason=Reason("LOAN_INTENT", "Purpose of the loan"),
    ),
    Feature(
        "home_ownership",
        "category",
        "Housing situation.",
        categories=HOME_OWNERSHIPS,
        reason=Reason("HOME_OWNERSHIP", "Housing situation"),
    ),
    Feature(
        "credit_history_length",
        "integer",
        "Years since the first credit line was opened.",
        0,
        80,
        unit="years",
        reason=Reason("CREDIT_HISTORY_LENGTH", "Length of credit history"),
    ),
    Feature(
        "num_credit_lines",
        "integer",
        "Open credit lines (cards, loans).",
        0,
        100,
        reason=Reason("NUM_CREDIT_LINES", "Number of open credit lines"),
    ),
    Feature(
        "derogatory_marks",
        "integer",
        "Derogatory public records and serious delinquencies.",
        0,
        50,
        reason=Reason("DEROGATORY_MARKS", "Number of derogatory marks"),
    ),
    Feature(
        "total_debt",
        "number",
        "Outstanding debt before this loan.",
        0,
        10_000_000,
        unit="currency units",
        reason=Reason("TOTAL_DEBT", "Amount of existing debt"),
    ),
)

FEATURES_BY_NAME: Final = {f.name: f for f in FEATURES}
FEATURE_NAMES: Final = tuple(f.name for f in FEATURES)
NUMERIC_FEATURES: Final = tuple(f.name for f in FEATURES if f.is_numeric)
CATEGORICAL_FEATURES: Final = tuple(f.name for f in FEATURES if not f.is_numeric)


def _fingerprint(features: tuple[Feature, ...]) -> str:
    """A short SHA-256 of what an application must be: each field's name, type, bounds and categories.

    NB: derived, never bumped by hand, so it cannot be forgotten; descriptions, units and reasons
    are left out because they change the wording, not what a valid application is.
    """
    rules = [[f.name, f.kind, f.minimum, f.maximum, list(f.categories)] for f in features]
    encoded = json.dumps(rules, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()[:16]


# The version of the applicant schema an application was validated against; each decision
# record carries it (``facade.records``), so a record's ``application`` can be read with its rules.
SCHEMA_VERSION: Final = _fingerprint(FEATURES)


@dataclass(frozen=True)
class Ratio:
    """An engineered feature the model is built on, computed from applicant fields.

    ``model_code.preprocessing`` implements each ratio by its name; here it is declared with the
    fields it reads and the reason its share of the risk is reported as.
    """

    name: str
    description: str
    inputs: tuple[str, ...]
    reason: Reason


RATIOS: Final[tuple[Ratio, ...]] = (
    Ratio(
        "debt_to_income",
        "Existing debt over income.",
        ("total_debt", "income"),
        Reason("DEBT_TO_INCOME", "Existing debt is high relative to income"),
    ),
    Ratio(
        "loan_to_income",
        "Requested principal over income.",
        ("loan_amount", "income"),
        Reason("LOAN_TO_INCOME", "Amount of credit requested is high relative to income"),
    ),
    Ratio(
        "total_debt_with_loan_to_income",
        "Existing debt plus the requested principal, over income.",
        ("total_debt", "loan_amount", "income"),
        Reason(
            "TOTAL_OBLIGATIONS_TO_INCOME", "Total obligations including this loan are high relative to income"
        ),
    ),
    Ratio(
        "history_to_adult_years",
        "Credit history over the years since 17.",
        ("credit_history_length", "age"),
        # NB: the share of a history short for one's age is reported as the credit history's.
        FEATURES_BY_NAME["credit_history_length"].reason,
    ),
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
