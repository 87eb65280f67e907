"""Principal reasons and score points: how a probability of default is explained and scaled.

Stdlib only (the facade documents these without scikit-learn). The catalogue is derived from the
applicant schema: every scored field and every engineered ratio names its reason
(``model_code.schema``), and every encoded model column (numeric, engineered or one-hot) maps to
one, so contributions are reported against the applicant's own fields; US Regulation B practice
is to state up to four principal reasons. A field the model does not score (age) has no reason:
the reasons of an adverse action must be factors actually scored.
"""

from __future__ import annotations

import math
from typing import Final

from model_code.schema import FEATURES, RATIOS, Reason

MAX_REASONS: Final = 4

_SCORED: Final = tuple((f, f.reason) for f in FEATURES if f.reason is not None)

# NB: a reason named by several sources (a field and a ratio of it) appears once, where first named.
REASONS: Final[tuple[Reason, ...]] = tuple(
    dict.fromkeys([*(reason for _, reason in _SCORED), *(r.reason for r in RATIOS)])
)
REASONS_BY_CODE: Final = {r.code: r for r in REASONS}

# Encoded column (ColumnTransformer output: fields, engineered ratios, one-hot ``<field>_<CATEGORY>``)
# → reason code.
_COLUMN_REASON: Final = {
    **{f.name: reason.code for f, reason in _SCORED if f.is_numeric},
    **{r.name: r.reason.code for r in RATIOS},
    **{f"{f.name}_{category}": reason.code for f, reason in _SCORED for category in f.categories},
}


def reason_for_column(column: str) -> str:
    """The reason code of an encoded model column; KeyError for a column the schema does not make."""
    try:
        return _COLUMN_REASON[column]
    except KeyError:
        raise KeyError(f"no reason code for encoded column {column!r}") from None


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
