"""Predictions: one application or a batch, each answered by one call to the scoring server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import uuid4

from fastapi import APIRouter, Body, Depends

from facade.api.deps import RegistryDep, ScoringDep, limit_batch_size, require_json
from facade.core.errors import problem_responses
from facade.core.metrics import BATCH_PREDICTION_SIZE
from facade.schemas import (
    ApplicationIn,
    BatchIn,
    BatchPredictionPublic,
    BatchSummary,
    PredictionPublic,
    applicant_examples,
    batch_examples,
)
from facade.scoring import ScoredRow
from facade.service import score

router = APIRouter(prefix="/predict", tags=["predict"], dependencies=[Depends(require_json)])


def _public(row: ScoredRow, model_version: str, at: datetime) -> PredictionPublic:
    return PredictionPublic(
        application_id=uuid4(),
        prediction=row.prediction,
        confidence=row.confidence,
        risk_score=row.risk_score,
        approval_probability=row.approval_probability,
        rejection_probability=row.rejection_probability,
        model_version=model_version,
        timestamp=at,
    )


@router.post(
    "",
    response_model=PredictionPublic,
    responses=problem_responses(400, 415, 422, 500, 502, 503, 504),
)
async def predict(
    application_in: Annotated[ApplicationIn, Body(openapi_examples=applicant_examples())],
    scoring: ScoringDep,
    registry: RegistryDep,
) -> PredictionPublic:
    """Score one loan application: decision, probabilities and the model version that decided."""
    scored = await score(scoring, registry, [application_in.model_dump()])
    return _public(scored.rows[0], scored.model_version, datetime.now(UTC))


@router.post(
    "/batch",
    response_model=BatchPredictionPublic,
    responses=problem_responses(400, 413, 415, 422, 500, 502, 503, 504),
    dependencies=[Depends(limit_batch_size)],
)
async def predict_batch(
    batch_in: Annotated[BatchIn, Body(openapi_examples=batch_examples())],
    scoring: ScoringDep,
    registry: RegistryDep,
) -> BatchPredictionPublic:
    """Score up to MAX_BATCH_SIZE applications in one model call; answers keep the input order."""
    BATCH_PREDICTION_SIZE.observe(len(batch_in.applications))
    scored = await score(scoring, registry, [a.model_dump() for a in batch_in.applications])
    at = datetime.now(UTC)
    predictions = [_public(row, scored.model_version, at) for row in scored.rows]
    approved = sum(p.prediction == "APPROVED" for p in predictions)
    return BatchPredictionPublic(
        predictions=predictions,
        count=len(predictions),
        summary=BatchSummary(approved=approved, rejected=len(predictions) - approved),
        model_version=scored.model_version,
    )
