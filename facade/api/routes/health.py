"""Liveness and readiness: is the process up; is the model served, its version known, decisions recordable.

Both stay open when API keys are configured: orchestrators and load balancers probe them.
"""

from __future__ import annotations

from fastapi import APIRouter

from facade.api.deps import LifecycleDep, ServiceDep, SettingsDep
from facade.api.openapi import problem_responses
from facade.errors import NotReady
from facade.schemas import HealthPublic, ReadyPublic

router = APIRouter(prefix="/health", tags=["health"])


@router.get("", response_model=HealthPublic, responses=problem_responses(500))
async def health(settings: SettingsDep) -> HealthPublic:
    """Liveness: 200 while the process serves HTTP; it does not call the model."""
    return HealthPublic(status="ok", app=settings.APP_NAME, version=settings.APP_VERSION)


@router.get("/ready", response_model=ReadyPublic, responses=problem_responses(503, 500))
async def ready(settings: SettingsDep, lifecycle: LifecycleDep, service: ServiceDep) -> ReadyPublic:
    """Readiness, checked live: the model is served, scores a known applicant and has a known version."""
    if lifecycle.draining:
        # NB: first step of a graceful shutdown: stop being sent traffic, keep answering what comes.
        raise NotReady("The service is shutting down.")
    scored = await service.warm_up()
    if service.records is not None:
        # NB: a decision that cannot be recorded is refused, so an instance whose records database
        # cannot be written now (unreachable, read-only, locked by another writer, no INSERT grant)
        # cannot serve predictions. The ping writes nothing and closes no circuit.
        try:
            await service.records.ping()
        except Exception as exc:
            raise NotReady(f"decision records cannot be written: {type(exc).__name__}") from None
    return ReadyPublic(
        status="ready",
        model_name=settings.MODEL_NAME,
        model_version=scored.model_version,
        model_alias=settings.MODEL_ALIAS,
    )
