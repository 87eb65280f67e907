"""Model information: the version served now, its metrics and inputs, its rollout and challenger, its card."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from facade.api.deps import RegistryDep, ServiceDep, SettingsDep
from facade.api.openapi import problem_responses
from facade.errors import RegistryUnavailable
from facade.metrics import AGREEMENTS
from facade.schemas import (
    AgreementPublic,
    ChallengerPublic,
    ModelInfoPublic,
    RolloutPublic,
    ShadowPublic,
    features_public,
)
from facade.security import SCOPE_MODEL_READ, require_scope
from facade.service import PredictionService
from model_code.tracking import MODEL_CARD_ARTIFACT

router = APIRouter(prefix="/model", tags=["model"], dependencies=[Depends(require_scope(SCOPE_MODEL_READ))])


class MarkdownResponse(PlainTextResponse):
    media_type = "text/markdown"


@router.get("/info", response_model=ModelInfoPublic, responses=problem_responses(401, 403, 429, 500, 503))
async def model_info(settings: SettingsDep, service: ServiceDep, registry: RegistryDep) -> ModelInfoPublic:
    """Describe the model answering now (asked of the scoring server, not assumed from the alias)."""
    scored = await service.warm_up()
    run = await registry.run_info(scored.run_id)
    return ModelInfoPublic(
        name=settings.MODEL_NAME,
        alias=settings.MODEL_ALIAS,
        version=scored.model_version,
        run_id=scored.run_id,
        metrics=run.test_metrics,
        features=features_public(),
        decision_threshold=run.decision_threshold,
        loaded_at=registry.first_seen(scored.run_id),
        rollout=_rollout(service),
        challenger=_challenger(service),
    )


def _rollout(service: PredictionService) -> RolloutPublic | None:
    rollout = service.backends.rollout()
    if rollout is None:
        return None
    return RolloutPublic(
        state=rollout.state,
        version=rollout.version,
        previous_version=rollout.previous_version,
        reason=rollout.reason,
        started_at=rollout.started_at,
        finished_at=rollout.finished_at,
        start_seconds=rollout.start_seconds,
    )


def _challenger(service: PredictionService) -> ChallengerPublic | None:
    backend = service.backends.challenger_backend
    if backend is None:
        return None
    shadow = service.shadow
    if shadow is None:
        return ChallengerPublic(version=backend.version, run_id=backend.run_id, shadow=None)
    tally = shadow.tally
    compared = tally.compared if tally is not None else 0
    return ChallengerPublic(
        version=backend.version,
        run_id=backend.run_id,
        shadow=ShadowPublic(
            sample_rate=shadow.rate,
            champion_version=tally.champion_version if tally else None,
            challenger_version=tally.challenger_version if tally else None,
            compared=compared,
            agreement=AgreementPublic(**(tally.agreement if tally else dict.fromkeys(AGREEMENTS, 0))),
            agreement_rate=tally.agreement["same"] / compared if tally and compared else None,
            mean_risk_delta=tally.risk_delta_sum / compared if tally and compared else None,
            since=tally.since if tally else None,
            dropped=shadow.dropped,
            failed=shadow.failed,
        ),
    )


@router.get(
    "/card",
    response_class=MarkdownResponse,
    responses={
        200: {
            "description": (
                "The model card written at training for the version answering now: intended use, data, "
                "metrics, calibration, the fairness table by age band, limitations."
            ),
            "content": {"text/markdown": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403, 429, 500),
        503: {
            **problem_responses(503)[503],
            "description": (
                "The model is not served, or the tracking server cannot give its run's model card (a model "
                "trained before model cards has none). Retry after the seconds in Retry-After."
            ),
        },
    },
)
async def model_card(service: ServiceDep, registry: RegistryDep) -> MarkdownResponse:
    """The served model's card (its run's `model_card.md` artifact, from the tracking server) as Markdown."""
    scored = await service.warm_up()
    try:
        card = await registry.run_artifact(scored.run_id, MODEL_CARD_ARTIFACT)
    except RegistryUnavailable as exc:
        raise RegistryUnavailable(f"The served model's card is unavailable: {exc.detail}") from exc
    return MarkdownResponse(card)
