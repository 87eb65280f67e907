"""Request and response models of the public API; the request model is derived from model_code.schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from model_code.reasons import (
    MAX_REASONS,
    REASONS,
    SCORE_BASE_ODDS,
    SCORE_BASE_POINTS,
    SCORE_MAX,
    SCORE_MIN,
    SCORE_POINTS_TO_DOUBLE_ODDS,
)
from model_code.schema import EXAMPLE_APPLICANTS, FEATURES, Feature, Kind

Decision = Literal["APPROVED", "REJECTED"]

CREDIT_SCORE_DESCRIPTION = (
    f"Score points for the probability of default p: {SCORE_BASE_POINTS:.0f} points at "
    f"{SCORE_BASE_ODDS:.0f}:1 good:bad odds, {SCORE_POINTS_TO_DOUBLE_ODDS:.0f} more points each time the "
    f"odds double (offset + factor × ln((1 − p) / p), factor = {SCORE_POINTS_TO_DOUBLE_ODDS:.0f} / ln 2), "
    f"rounded and clipped to {SCORE_MIN}–{SCORE_MAX}. Higher means lower risk."
)
REASONS_DESCRIPTION = (
    f"Up to {MAX_REASONS} principal reasons: the factors that raised the probability of default most, "
    "largest contribution first. Always present when the prediction is REJECTED (the principal reasons "
    "for an adverse action, as US Regulation B asks); also given for APPROVED when some factor raised "
    "the risk, and empty only when none did."
)


def _integral_float_to_int(value: object) -> object:
    """36.0 becomes 36; anything else is left for the strict integer check (35.5, "36", true fail).

    NB: JSON Schema, and so the published OpenAPI document, counts 36.0 as an integer, and so does
    the model's own check (model_code.schema.Feature.violation); refusing it broke the contract.
    """
    return int(value) if isinstance(value, float) and value.is_integer() else value


StrictInteger = Annotated[int, BeforeValidator(_integral_float_to_int)]


def _applicant_field(feature: Feature) -> tuple[Any, Any]:
    """The annotation and Field of one applicant field, with the schema's type, bounds and text."""
    if feature.kind == "category":
        # NB: a Literal built at run time from the schema's categories; exact and case-sensitive.
        return Literal.__getitem__(feature.categories), Field(description=feature.description)
    # NB: strict, so "35", true and 35.5 are refused for an age instead of coerced or truncated;
    # a strict float still accepts a JSON integer (an income of 75000).
    is_number = feature.kind == "number"
    return float if is_number else StrictInteger, Field(
        strict=True,
        ge=feature.minimum,
        le=feature.maximum,
        allow_inf_nan=False if is_number else None,
        description=feature.description,
    )


if TYPE_CHECKING:
    # NB: mypy cannot see fields made by create_model; this stub names the class for it.
    class ApplicationIn(BaseModel):
        pass
else:
    ApplicationIn = create_model(
        "ApplicationIn",
        __config__=ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": list(EXAMPLE_APPLICANTS.values())},
        ),
        __doc__="One loan applicant; every field is required and unknown fields are refused.",
        **{feature.name: _applicant_field(feature) for feature in FEATURES},
    )


class BatchIn(BaseModel):
    """Several applicants scored in one call; the cap is the server's MAX_BATCH_SIZE (default 1000)."""

    model_config = ConfigDict(extra="forbid")

    applications: list[ApplicationIn] = Field(min_length=1)


class ReasonPublic(BaseModel):
    """One principal reason for the decision: a stable code, its plain-language text and its weight."""

    code: str = Field(
        description="Stable reason code from the model's catalogue (model_code/reasons.py).",
        json_schema_extra={"enum": [reason.code for reason in REASONS]},
    )
    description: str = Field(description="The reason in plain language, from the same catalogue.")
    contribution: float = Field(
        gt=0.0,
        le=1.0,
        description=(
            "The share of the probability of default this reason added, in probability units "
            "(0.2 is 20 percentage points): the applicant's fields behind the code, summed over the "
            "exact per-tree path contributions of the forest. The model's base rate plus the "
            "contributions of every reason, including those that lowered the risk and are not listed, "
            "equals rejection_probability."
        ),
    )


class PredictionPublic(BaseModel):
    """The decision on one application, the probabilities behind it, its score points and reasons."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_id": "c2a4e3f1-7d6b-4f0a-8e2c-9b1d5a7c3e64",
                    "prediction": "REJECTED",
                    "confidence": 0.89037,
                    "risk_score": 0.89037,
                    "approval_probability": 0.10963,
                    "rejection_probability": 0.89037,
                    "credit_score": 427,
                    "reasons": [
                        {
                            "code": "TOTAL_OBLIGATIONS_TO_INCOME",
                            "description": (
                                "Total obligations including this loan are high relative to income"
                            ),
                            "contribution": 0.21905,
                        },
                        {
                            "code": "LOAN_TO_INCOME",
                            "description": "Amount of credit requested is high relative to income",
                            "contribution": 0.11246,
                        },
                        {
                            "code": "DEBT_TO_INCOME",
                            "description": "Existing debt is high relative to income",
                            "contribution": 0.08429,
                        },
                        {
                            "code": "CREDIT_HISTORY_LENGTH",
                            "description": "Length of credit history",
                            "contribution": 0.0565,
                        },
                    ],
                    "model_version": "1",
                    "timestamp": "2026-11-29T10:15:01.654321Z",
                }
            ]
        }
    )

    application_id: UUID = Field(description="Generated by the facade for this prediction (UUID4).")
    prediction: Decision
    confidence: float = Field(description="Probability of the predicted side.")
    risk_score: float = Field(description="Probability of default; equals rejection_probability.")
    approval_probability: float
    rejection_probability: float
    credit_score: int = Field(ge=SCORE_MIN, le=SCORE_MAX, description=CREDIT_SCORE_DESCRIPTION)
    reasons: list[ReasonPublic] = Field(max_length=MAX_REASONS, description=REASONS_DESCRIPTION)
    model_version: str = Field(description="Registered version of the model that scored this application.")
    timestamp: AwareDatetime = Field(description="When the facade answered, ISO-8601 in UTC.")


class BatchSummary(BaseModel):
    approved: int
    rejected: int


class BatchPredictionPublic(BaseModel):
    """Predictions in the order of the submitted applications."""

    predictions: list[PredictionPublic]
    count: int
    summary: BatchSummary
    model_version: str = Field(description="Registered version of the model that scored the batch.")


class FeaturePublic(BaseModel):
    """One applicant field as the model expects it."""

    name: str
    type: Kind
    description: str
    minimum: float | None
    maximum: float | None
    categories: list[str] | None
    unit: str | None


class ModelInfoPublic(BaseModel):
    """The model the scoring server is serving now, as the registry knows it."""

    name: str
    alias: str = Field(description="The alias the deployment is configured to serve.")
    version: str = Field(description="Registered version of the model answering predictions now.")
    run_id: str
    metrics: dict[str, float] = Field(description="The training run's test metrics, `test_` prefix removed.")
    features: list[FeaturePublic]
    decision_threshold: float | None = Field(
        description="Rejection probability at or above which an application is rejected."
    )
    loaded_at: AwareDatetime = Field(description="When this facade first saw this version served.")


class HealthPublic(BaseModel):
    status: Literal["ok"]
    app: str
    version: str


class ReadyPublic(BaseModel):
    status: Literal["ready"]
    model_name: str
    model_version: str
    model_alias: str


def features_public() -> list[FeaturePublic]:
    """The applicant schema as served by /model/info."""
    return [
        FeaturePublic(
            name=f.name,
            type=f.kind,
            description=f.description,
            minimum=f.minimum,
            maximum=f.maximum,
            categories=list(f.categories) or None,
            unit=f.unit or None,
        )
        for f in FEATURES
    ]


_EXAMPLE_SUMMARIES = {"approved": "A clear approval", "rejected": "A clear rejection"}


def applicant_examples() -> dict[str, Any]:
    """The README's two applicants as named OpenAPI examples."""
    return {
        name: {"summary": _EXAMPLE_SUMMARIES.get(name, name), "value": applicant}
        for name, applicant in EXAMPLE_APPLICANTS.items()
    }


def batch_examples() -> dict[str, Any]:
    """Batches of the README's applicants: each alone, and both in order."""
    examples = {
        name: {"summary": example["summary"], "value": {"applications": [example["value"]]}}
        for name, example in applicant_examples().items()
    }
    examples["both"] = {
        "summary": "Both applicants, answered in this order",
        "value": {"applications": list(EXAMPLE_APPLICANTS.values())},
    }
    return examples
