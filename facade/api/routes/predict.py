"""Predictions: one application (micro-batched with its concurrent peers) or a batch in one model call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import uuid4

from fastapi import APIRouter, Body, Depends, Request

from facade.api.deps import ServiceDep, limit_batch_size, limit_in_flight, require_json
from facade.api.openapi import problem_responses
from facade.contract import ScoredRow, public_values
from facade.core.middleware import annotate_access_log
from facade.metrics import BATCH_PREDICTION_SIZE
from facade.schemas import (
    ApplicationIn,
    BatchIn,
    BatchPredictionPublic,
    BatchSummary,
    PredictionPublic,
    applicant_examples,
    batch_examples,
)
from facade.security import SCOPE_PREDICT, require_scope
from model_code.contract import APPROVED

# NB: in this order: who is asking, may it and is its quota left (401, 403, 429), what was sent
# (415), then a slot in flight (503). The
# slot is given back when the handler returns (scope="function"), before the answer is sent, so a
# client that sends its next request on receiving this answer finds the slot free.
router = APIRouter(
    prefix="/predict",
    tags=["predict"],
    dependencies=[
        Depends(require_scope(SCOPE_PREDICT)),
        Depends(require_json),
        Depends(limit_in_flight, scope="function"),
    ],
)


def _public(row: ScoredRow, model_version: str, at: datetime) -> PredictionPublic:
    # NB: model_construct: every value was validated when the scoring server's answer was parsed
    # (ScoredRow, the same contract); validating again cost a third of a 10,000-row batch's time.
    return PredictionPublic.model_construct(
        application_id=uuid4(), **public_values(row), model_version=model_version, timestamp=at
    )


@router.post(
    "",
    response_model=PredictionPublic,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 500, 502, 503, 504),
)
async def predict(
    request: Request,
    application_in: Annotated[ApplicationIn, Body(openapi_examples=applicant_examples())],
    service: ServiceDep,
) -> PredictionPublic:
    """Score one loan application: decision, probabilities, score points, principal reasons, model version."""
    one = await service.score_one(application_in.model_dump())
    prediction = _public(one.row, one.model_version, datetime.now(UTC))
    annotate_access_log(request, application_ids=[str(prediction.application_id)])
    return prediction


@router.post(
    "/batch",
    response_model=BatchPredictionPublic,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 500, 502, 503, 504),
    dependencies=[Depends(limit_batch_size)],
)
async def predict_batch(
    request: Request,
    batch_in: Annotated[BatchIn, Body(openapi_examples=batch_examples())],
    service: ServiceDep,
) -> BatchPredictionPublic:
    """Score up to MAX_BATCH_SIZE applications in one model call; answers keep the input order."""
    BATCH_PREDICTION_SIZE.observe(len(batch_in.applications))
    scored = await service.score([a.model_dump() for a in batch_in.applications])
    at = datetime.now(UTC)
    predictions = [_public(row, scored.model_version, at) for row in scored.rows]
    annotate_access_log(request, application_ids=[str(p.application_id) for p in predictions])
    approved = sum(p.prediction == APPROVED for p in predictions)
    return BatchPredictionPublic(
        predictions=predictions,
        count=len(predictions),
        summary=BatchSummary(approved=approved, rejected=len(predictions) - approved),
        model_version=scored.model_version,
    )
