"""Model information: the registered version served now, its test metrics and inputs, and its model card."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from facade.api.deps import RegistryDep, ServiceDep, SettingsDep
from facade.api.openapi import problem_responses
from facade.errors import RegistryUnavailable
from facade.schemas import ModelInfoPublic, features_public
from facade.security import SCOPE_MODEL_READ, require_scope
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
