"""The applicant schema: the single source of truth every other stage derives from.

Training, the synthetic generator, preprocessing, the MLflow signature, the pyfunc's input
checks, the reason codes, the credit policy (how risk may move with each field, which training
imposes on the forest and the policy gate checks) and the facade's request model are all built
from ``FEATURES`` (and the engineered ``RATIOS``) below. This module is stdlib-only on purpose:
the facade imports it without mlflow, pandas or scikit-learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Literal

Kind = Literal["integer", "number", "category"]
# How the probability of default may move as a field's value rises: never down ("up"), never up
# ("down"), or either way ("none", unconstrained).
Direction = Literal["up", "down", "none"]
OPPOSITE: Final[dict[Direction, Direction]] = {"up": "down", "down": "up", "none": "none"}

# NB: Regulation B (12 CFR 1002.2(o)) calls an applicant aged 62 or more elderly; a scoring system
# may use age only if an elderly applicant's age is never assigned a negative value (1002.6(b)(2)).
ELDERLY_AGE: Final = 62


@dataclass(frozen=True)
class Reason:
    """A stable adverse-action reason: its code and its plain-language text (``model_code.reasons``)."""

    code: str
    description: str


@dataclass(frozen=True)
class Step:
    """A move up in a field's value: times ``factor`` or plus ``offset`` (one of them), within its bounds.

    The policy gate at training and the behavioural tests try it on every applicant and count
    those whose risk moves against the field's direction.
    """

    factor: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        if (self.factor != 1.0) == (self.offset != 0.0) or self.factor < 1.0 or self.offset < 0.0:
            raise ValueError("a step raises the value either by a factor above 1 or by a positive offset")

    def describe(self) -> str:
        return f"×{self.factor:g}" if self.factor != 1.0 else f"+{self.offset:g}"


@dataclass(frozen=True)
class Feature:
    """One applicant field: its type, its allowed values, what it means, how it is scored and explained."""

    name: str
    kind: Kind
    description: str
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = field(default=())
    unit: str = ""
    # NB: what this field's share of the risk is called in a decision's principal reasons (its
    # one-hot columns, for a category, report under the same reason); None for a field the model
    # does not score, which therefore can never be a reason.
    reason: Reason | None = field(kw_only=True)
    # NB: the credit policy: how the risk may move as the value rises, whatever the rest of the
    # application. Training constrains the forest with it, so it holds for every applicant, and
    # the policy gate checks it with ``step``. Categories have no order: always "none".
    direction: Direction = field(kw_only=True)
    step: Step | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        constrained = self.direction != "none"
        if constrained and (self.kind == "category" or self.reason is None):
            raise ValueError(f"{self.name}: only a scored numeric field can have a direction")
        if constrained != (self.step is not None):
            raise ValueError(f"{self.name}: a field has a policy step exactly when it has a direction")
        if self.step is not None and self.kind == "integer" and not float(self.step.offset).is_integer():
            raise ValueError(f"{self.name}: an integer field moves by whole offsets")
        if self.step is not None and self.kind == "integer" and self.step.factor != 1.0:
            raise ValueError(f"{self.name}: an integer field moves by an offset, not a factor")

    @property
    def is_numeric(self) -> bool:
        return self.kind != "category"

    @property
    def scored(self) -> bool:
        """Whether the model reads this field (an unscored field is still validated and monitored)."""
        return self.reason is not None

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
        # NB: validated, and kept for the fairness report by age band and the drift gauges, but not
        # scored. Regulation B lets a scoring system use age only if no elderly applicant's age is
        # ever valued below that of the most favoured younger age class (12 CFR 1002.2(v),
        # 1002.6(b)(2)(ii)), and on our data age adds nothing once the other fields are known (the
        # README has the measurement). An unscored field can be no principal reason, so there is no
        # AGE reason code. Scoring it again would need a capped input (the model seeing
        # min(age, ELDERLY_AGE - 1)) with a "down" direction; the policy gate refuses any model
        # that scores an elderly applicant worse than at 61.
        reason=None,
        direction="none",
    ),
    Feature(
        "income",
        "number",
        "Gross annual income.",
        0,
        10_000_000,
        unit="currency units per year",
        reason=Reason("INCOME", "Income level"),
        direction="down",
        step=Step(factor=1.5),
    ),
    Feature(
        "employment_length",
        "integer",
        "Years with the current employer.",
        0,
        60,
        unit="years",
        reason=Reason("EMPLOYMENT_LENGTH", "Length of employment"),
        direction="down",
        step=Step(offset=1),
    ),
    Feature(
        "loan_amount",
        "number",
        "Requested loan principal.",
        500,
        1_000_000,
        unit="currency units",
        reason=Reason("LOAN_AMOUNT", "Amount of credit requested"),
        direction="up",
        step=Step(factor=1.5),
    ),
    Feature(
        "loan_intent",
        "category",
        "What the loan is for.",
        categories=LOAN_INTENTS,
        reason=Reason("LOAN_INTENT", "Purpose of the loan"),
        direction="none",
    ),
    Feature(
        "home_ownership",
        "category",
        "Housing situation.",
        categories=HOME_OWNERSHIPS,
        reason=Reason("HOME_OWNERSHIP", "Housing situation"),
        direction="none",
    ),
    Feature(
        "credit_history_length",
        "integer",
        "Years since the first credit line was opened.",
        0,
        80,
        unit="years",
        reason=Reason("CREDIT_HISTORY_LENGTH", "Length of credit history"),
        direction="down",
        step=Step(offset=3),
    ),
    Feature(
        "num_credit_lines",
        "integer",
        "Open credit lines (cards, loans).",
        0,
        100,
        reason=Reason("NUM_CREDIT_LINES", "Number of open credit lines"),
        # NB: the data supports no direction: more lines come with more debt, which is scored on
        # its own, and otherwise carry no risk of their own in the generator's risk model.
        direction="none",
    ),
    Feature(
        "derogatory_marks",
        "integer",
        "Derogatory public records and serious delinquencies.",
        0,
        50,
        reason=Reason("DEROGATORY_MARKS", "Number of derogatory marks"),
        direction="up",
        step=Step(offset=1),
    ),
    Feature(
        "total_debt",
        "number",
        "Outstanding debt before this loan.",
        0,
        10_000_000,
        unit="currency units",
        reason=Reason("TOTAL_DEBT", "Amount of existing debt"),
        direction="up",
        step=Step(factor=1.5),
    ),
)

FEATURES_BY_NAME: Final = {f.name: f for f in FEATURES}
FEATURE_NAMES: Final = tuple(f.name for f in FEATURES)
NUMERIC_FEATURES: Final = tuple(f.name for f in FEATURES if f.is_numeric)
CATEGORICAL_FEATURES: Final = tuple(f.name for f in FEATURES if not f.is_numeric)
# The fields the model reads: the pipeline's columns and the fast encoder's, in schema order.
SCORED_NUMERIC_FEATURES: Final = tuple(f.name for f in FEATURES if f.is_numeric and f.scored)
SCORED_CATEGORICAL_FEATURES: Final = tuple(f.name for f in FEATURES if not f.is_numeric and f.scored)
# The fields whose direction the forest is constrained to and the policy gate checks.
CONSTRAINED_FEATURES: Final = tuple(f for f in FEATURES if f.direction != "none")


@dataclass(frozen=True)
class Ratio:
    """An engineered feature the model is built on: the sum of some fields over the sum of others.

    ``model_code.preprocessing`` computes every ratio the same way from ``numerator`` and
    ``denominator``; its share of the risk is reported as ``reason``. Its direction is not declared
    but inherited from its inputs (``direction``).
    """

    name: str
    description: str
    numerator: tuple[str, ...]
    denominator: tuple[str, ...]
    reason: Reason
    direction: Direction = field(init=False)

    def __post_init__(self) -> None:
        for name in self.inputs:
            feature = FEATURES_BY_NAME[name]
            if not (feature.is_numeric and feature.scored):
                raise ValueError(f"ratio {self.name}: {name} is not a scored numeric field")
        object.__setattr__(self, "direction", self._inherited_direction())

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*self.numerator, *self.denominator)

    def _inherited_direction(self) -> Direction:
        """The one direction under which every input keeps its own through this ratio.

        NB: the ratio rises with each numerator field and falls with each denominator field (values
        are never negative and the denominator is floored above zero). So a numerator field whose
        risk goes "up" needs the ratio "up"; a denominator field whose risk goes "down" (income)
        lowers the ratio as it rises, so it needs the ratio "up" too. A ratio whose constrained
        inputs would need opposite directions could not keep them both: it is refused.
        """
        needed = {FEATURES_BY_NAME[name].direction for name in self.numerator}
        needed |= {OPPOSITE[FEATURES_BY_NAME[name].direction] for name in self.denominator}
        needed.discard("none")
        if len(needed) > 1:
            raise ValueError(f"ratio {self.name}: its inputs' directions cannot all hold through it")
        return needed.pop() if needed else "none"


# NB: no ratio reads age. Credit history over the years since 17 used to be one: it valued an
# elderly applicant's history below a younger applicant's with the same history, which is age
# held against the elderly by another name.
RATIOS: Final[tuple[Ratio, ...]] = (
    Ratio(
        "debt_to_income",
        "Existing debt over income.",
        ("total_debt",),
        ("income",),
        Reason("DEBT_TO_INCOME", "Existing debt is high relative to income"),
    ),
    Ratio(
        "loan_to_income",
        "Requested principal over income.",
        ("loan_amount",),
        ("income",),
        Reason("LOAN_TO_INCOME", "Amount of credit requested is high relative to income"),
    ),
    Ratio(
        "total_debt_with_loan_to_income",
        "Existing debt plus the requested principal, over income.",
        ("total_debt", "loan_amount"),
        ("income",),
        Reason(
            "TOTAL_OBLIGATIONS_TO_INCOME", "Total obligations including this loan are high relative to income"
        ),
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
