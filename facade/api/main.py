"""The versioned API router: every resource under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from facade.api.routes import decisions, health, model, predict

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(predict.router)
api_router.include_router(model.router)
api_router.include_router(decisions.router)
