"""Principal reasons and score points: how a probability of default is explained and scaled.

Stdlib only (the facade documents these without scikit-learn). Every encoded model column maps
to one reason code, so contributions of one-hot and engineered columns are reported against the
applicant's own fields; US Regulation B practice is to state up to four principal reasons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

MAX_REASONS: Final = 4


@dataclass(frozen=True)
class Reason:
    """A stable adverse-action reason: its code, its plain-language text and the fields behind it."""

    code: str
    description: str
    fields: tuple[str, ...]


REASONS: Final[tuple[Reason, ...]] = (
    Reason("DEBT_TO_INCOME", "Existing debt is high relative to income", ("total_debt", "income")),
    Reason(
        "LOAN_TO_INCOME", "Amount of credit requested is high relative to income", ("loan_amount", "income")
    ),
    Reason(
        "TOTAL_OBLIGATIONS_TO_INCOME",
        "Total obligations including this loan are high relative to income",
        ("total_debt", "loan_amount", "income"),
    ),
    Reason("DEROGATORY_MARKS", "Number of derogatory marks", ("derogatory_marks",)),
    Reason("CREDIT_HISTORY_LENGTH", "Length of credit history", ("credit_history_length", "age")),
    Reason("EMPLOYMENT_LENGTH", "Length of employment", ("employment_length",)),
    Reason("INCOME", "Income level", ("income",)),
    Reason("LOAN_AMOUNT", "Amount of credit requested", ("loan_amount",)),
    Reason("TOTAL_DEBT", "Amount of existing debt", ("total_debt",)),
    Reason("NUM_CREDIT_LINES", "Number of open credit lines", ("num_credit_lines",)),
    Reason("HOME_OWNERSHIP", "Housing situation", ("home_ownership",)),
    Reason("LOAN_INTENT", "Purpose of the loan", ("loan_intent",)),
    Reason("AGE", "Age of applicant", ("age",)),
)
REASONS_BY_CODE: Final = {r.code: r for r in REASONS}

# Encoded column (ColumnTransformer output, engineered ratios and one-hot included) → reason code.
_COLUMN_REASON: Final = {
    "age": "AGE",
    "income": "INCOME",
    "employment_length": "EMPLOYMENT_LENGTH",
    "loan_amount": "LOAN_AMOUNT",
    "credit_history_length": "CREDIT_HISTORY_LENGTH",
    "num_credit_lines": "NUM_CREDIT_LINES",
    "derogatory_marks": "DEROGATORY_MARKS",
    "total_debt": "TOTAL_DEBT",
    "debt_to_income": "DEBT_TO_INCOME",
    "loan_to_income": "LOAN_TO_INCOME",
    "total_debt_with_loan_to_income": "TOTAL_OBLIGATIONS_TO_INCOME",
    "history_to_adult_years": "CREDIT_HISTORY_LENGTH",
}


def reason_for_column(column: str) -> str:
    """The reason code of an encoded column (one-hot columns read ``<field>_<CATEGORY>``)."""
    if column in _COLUMN_REASON:
        return _COLUMN_REASON[column]
    for prefix, code in (("loan_intent_", "LOAN_INTENT"), ("home_ownership_", "HOME_OWNERSHIP")):
        if column.startswith(prefix):
            return code
    raise KeyError(f"no reason code for encoded column {column!r}")


# Score points: 600 points at 50:1 good:bad odds, 20 more points each time the odds double.
SCORE_BASE_POINTS: Final = 600.0
SCORE_BASE_ODDS: Final = 50.0
SCORE_POINTS_TO_DOUBLE_ODDS: Final = 20.0
SCORE_MIN: Final = 300
SCORE_MAX: Final = 850
_FACTOR: Final = SCORE_POINTS_TO_DOUBLE_ODDS / math.log(2.0)
_OFFSET: Final = SCORE_BASE_POINTS - _FACTOR * math.log(SCORE_BASE_ODDS)


def credit_score(probability_of_default: float) -> int:
    """Points for a probability of default: offset + factor × ln(good:bad odds), clipped to 300–850."""
    p = min(max(probability_of_default, 1e-12), 1.0 - 1e-12)
    points = _OFFSET + _FACTOR * math.log((1.0 - p) / p)
    return int(min(max(round(points), SCORE_MIN), SCORE_MAX))


def score_parameters() -> dict[str, float]:
    """The scale's parameters, logged with the model."""
    return {
        "score_base_points": SCORE_BASE_POINTS,
        "score_base_odds": SCORE_BASE_ODDS,
        "score_points_to_double_odds": SCORE_POINTS_TO_DOUBLE_ODDS,
        "score_min": float(SCORE_MIN),
        "score_max": float(SCORE_MAX),
    }
