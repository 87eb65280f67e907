"""Model information: which registered version is served now, its test metrics and its inputs."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from facade.api.deps import RegistryDep, ScoringDep, SettingsDep, require_api_key
from facade.core.errors import problem_responses
from facade.schemas import ModelInfoPublic, features_public
from facade.service import warm_up

router = APIRouter(prefix="/model", tags=["model"], dependencies=[Depends(require_api_key)])


@router.get("/info", response_model=ModelInfoPublic, responses=problem_responses(401, 500, 503))
async def model_info(settings: SettingsDep, scoring: ScoringDep, registry: RegistryDep) -> ModelInfoPublic:
    """Describe the model answering now (asked of the scoring server, not assumed from the alias)."""
    scored = await warm_up(scoring, registry)
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
