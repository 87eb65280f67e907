"""Predictions: one application (micro-batched with its concurrent peers) or a batch in one model call."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Depends, Request, Response

from facade.api.deps import ServiceDep, limit_batch_size, limit_in_flight, require_json
from facade.api.openapi import problem_responses
from facade.contract import public_values
from facade.core.middleware import annotate_access_log, request_id_of
from facade.metrics import BATCH_PREDICTION_SIZE
from facade.schemas import (
    ApplicationIn,
    BatchIn,
    BatchPredictionPublic,
    PredictionPublic,
    applicant_examples,
    batch_examples,
    batch_json,
    prediction_json,
)
from facade.security import SCOPE_PREDICT, Principal, require_scope
from facade.service import Decision, Submission
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


def _public(decision: Decision) -> dict[str, Any]:
    # NB: PredictionPublic's fields as a dict, never validated again: every value was validated when
    # the scoring server's answer was parsed (ScoredRow, the same contract); validating again cost a
    # third of a 10,000-row batch's time, and building the models another fifth.
    return {
        "application_id": decision.application_id,
        **public_values(decision.row),
        "model_version": decision.model_version,
        "timestamp": decision.timestamp,
    }


def _json(content: bytes) -> Response:
    return Response(content, media_type="application/json")


def _submissions(request: Request, applications: list[Any], entered: list[Any]) -> list[Submission]:
    # NB: ``entered`` holds the JSON objects the client sent, already parsed by FastAPI
    # (request.json() is cached) and validated as ``applications``: the record keeps those values as
    # sent (36.0 stays 36.0), the model scores the validated ones (each model's own dict of its
    # fields, not a copy for every row).
    request_id = request_id_of(request)
    # NB: left by require_scope, which admitted this request: a key's name, a token's subject, a
    # certificate's common name or "anonymous"; never a secret.
    client = cast(Principal, request.state.principal).name
    return [
        Submission(application=application.__dict__, entered=sent, request_id=request_id, client=client)
        for application, sent in zip(applications, entered, strict=True)
    ]


@router.post(
    "",
    response_model=PredictionPublic,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 500, 502, 503, 504),
)
async def predict(
    request: Request,
    application_in: Annotated[ApplicationIn, Body(openapi_examples=applicant_examples())],
    service: ServiceDep,
) -> Response:
    """Score one loan application: decision, probabilities, score points, principal reasons, model version.

    The decision is recorded before it is answered (when decision records are on); if its record
    cannot be written the answer is 503 and no decision is returned.
    """
    (submission,) = _submissions(request, [application_in], [await request.json()])
    decision = await service.decide_one(submission)
    annotate_access_log(request, application_ids=[str(decision.application_id)])
    return _json(prediction_json(_public(decision)))


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
) -> Response:
    """Score up to MAX_BATCH_SIZE applications in one model call; answers keep the input order.

    The batch's decisions are recorded in one transaction before they are answered: all, or none
    and a 503.
    """
    BATCH_PREDICTION_SIZE.observe(len(batch_in.applications))
    entered = (await request.json())["applications"]
    decided = await service.decide(_submissions(request, batch_in.applications, entered))
    predictions = [_public(decision) for decision in decided.decisions]
    annotate_access_log(request, application_ids=[str(d.application_id) for d in decided.decisions])
    approved = sum(d.row.prediction == APPROVED for d in decided.decisions)
    return _json(batch_json(predictions, approved, decided.model_version))
