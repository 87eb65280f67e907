"""The model's output contract: the row it answers for every applicant, and how it refuses bad input.

Declared once here, beside the applicant schema; the pyfunc writes these columns and its MLflow
signature declares them (``model_code.pyfunc``), and the facade parses the scoring server's rows
against them and copies them into its public response (``facade.contract``). Stdlib only: the
facade imports it without mlflow, pandas or scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Final, Literal

from model_code.reasons import (
    MAX_REASONS,
    REASONS,
    SCORE_BASE_ODDS,
    SCORE_BASE_POINTS,
    SCORE_MAX,
    SCORE_MIN,
    SCORE_POINTS_TO_DOUBLE_ODDS,
)
from model_code.tracking import RUN_ID_PATTERN

APPROVED: Final = "APPROVED"
REJECTED: Final = "REJECTED"
DECISIONS: Final = (APPROVED, REJECTED)

OutputKind = Literal["category", "number", "integer", "string", "reasons"]


@dataclass(frozen=True)
class Output:
    """One value of the output row: its type, its bounds and what it means.

    ``public`` columns reach the REST API's response as they are; the others are the facade's to read.
    """

    name: str
    kind: OutputKind
    description: str
    minimum: float | None = None
    maximum: float | None = None
    # NB: a reason is listed only when it raised the risk: its contribution is above 0, never 0.
    exclusive_minimum: bool = False
    categories: tuple[str, ...] = field(default=())
    pattern: str | None = None
    max_items: int | None = None
    public: bool = True


CREDIT_SCORE_DESCRIPTION: Final = (
    f"Score points for the probability of default p: {SCORE_BASE_POINTS:.0f} points at "
    f"{SCORE_BASE_ODDS:.0f}:1 good:bad odds, {SCORE_POINTS_TO_DOUBLE_ODDS:.0f} more points each time the "
    f"odds double (offset + factor × ln((1 − p) / p), factor = {SCORE_POINTS_TO_DOUBLE_ODDS:.0f} / ln 2), "
    f"rounded and clipped to {SCORE_MIN}–{SCORE_MAX}. Higher means lower risk."
)
REASONS_DESCRIPTION: Final = (
    f"Up to {MAX_REASONS} principal reasons: the factors that raised the probability of default most, "
    "largest contribution first. Always present when the prediction is REJECTED (the principal reasons "
    "for an adverse action, as US Regulation B asks); also given for APPROVED when some factor raised "
    "the risk, and empty only when none did."
)

# One principal reason, an item of the ``reasons`` column.
REASON_FIELDS: Final[tuple[Output, ...]] = (
    Output(
        "code",
        "category",
        "Stable reason code from the model's catalogue (model_code/reasons.py).",
        categories=tuple(reason.code for reason in REASONS),
    ),
    Output("description", "string", "The reason in plain language, from the same catalogue."),
    Output(
        "contribution",
        "number",
        "The share of the probability of default this reason added, in probability units "
        "(0.2 is 20 percentage points): the applicant's fields behind the code, summed over the "
        "exact per-tree path contributions of the forest. The model's base rate plus the "
        "contributions of every reason, including those that lowered the risk and are not listed, "
        "equals rejection_probability.",
        minimum=0.0,
        exclusive_minimum=True,
        maximum=1.0,
    ),
)

# The row, in the order the pyfunc writes it and the REST API answers it.
OUTPUTS: Final[tuple[Output, ...]] = (
    Output(
        "prediction",
        "category",
        "The decision: REJECTED when the probability of default reaches the model's decision "
        "threshold, APPROVED otherwise.",
        categories=DECISIONS,
    ),
    Output("confidence", "number", "Probability of the predicted side.", 0.0, 1.0),
    Output("risk_score", "number", "Probability of default; equals rejection_probability.", 0.0, 1.0),
    Output(
        "approval_probability", "number", "Probability of repayment: 1 − rejection_probability.", 0.0, 1.0
    ),
    Output("rejection_probability", "number", "The model's probability of default.", 0.0, 1.0),
    Output("credit_score", "integer", CREDIT_SCORE_DESCRIPTION, SCORE_MIN, SCORE_MAX),
    Output("reasons", "reasons", REASONS_DESCRIPTION, max_items=MAX_REASONS),
    Output(
        "model_run_id",
        "string",
        "The MLflow run that trained the model answering; the facade maps it to the registered version.",
        pattern=f"^{RUN_ID_PATTERN}$",
        public=False,
    ),
)
OUTPUT_COLUMNS: Final = tuple(o.name for o in OUTPUTS)
PUBLIC_OUTPUTS: Final = tuple(o for o in OUTPUTS if o.public)


@dataclass(frozen=True)
class Violation:
    """A rule some rows broke: the field, the rule in words and the 0-based rows; never a value.

    ``rows`` is empty when the field is missing from every row.
    """

    field: str
    rule: str
    rows: tuple[int, ...] = ()


# The scoring server answers a refusal with HTTP 400 and this MLflow error code.
REFUSAL_ERROR_CODE: Final = "INVALID_PARAMETER_VALUE"
REFUSAL_PREFIX: Final = "Invalid applicant data: "
_ROWS_IN_MESSAGE = 5


def describe(violations: Iterable[Violation]) -> str:
    """The violations in words, for people: ``age must be ... (row 0); total_debt is required``."""
    parts = []
    for v in violations:
        shown = ", ".join(str(r) for r in v.rows[:_ROWS_IN_MESSAGE])
        more = f" and {len(v.rows) - _ROWS_IN_MESSAGE} more" if len(v.rows) > _ROWS_IN_MESSAGE else ""
        parts.append(f"{v.field} {v.rule}" + (f" (row {shown}{more})" if v.rows else ""))
    return "; ".join(parts)


def refusal(violations: Sequence[Violation]) -> dict[str, object]:
    """The JSON body of a refusal: MLflow's error code, a message for people, the violations as data."""
    return {
        "error_code": REFUSAL_ERROR_CODE,
        "message": REFUSAL_PREFIX + describe(violations),
        "violations": [asdict(v) for v in violations],
    }


def row_of(columns: Mapping[str, object]) -> dict[str, object]:
    """``columns`` in contract order; KeyError names a column the writer forgot."""
    return {name: columns[name] for name in OUTPUT_COLUMNS}
