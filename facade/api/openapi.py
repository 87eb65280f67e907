"""The OpenAPI document: each route's error responses, and the touches FastAPI cannot make by itself.

Routes declare the statuses they can return with ``problem_responses(...)``; ``openapi_for``
then files every error under application/problem+json, publishes MAX_BATCH_SIZE as the batch's
``maxItems`` and drops the security schemes while no API key is configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from facade.core.config import Settings
from facade.core.problems import PROBLEM_MEDIA_TYPE, Problem

_DESCRIPTIONS = {
    400: "Malformed JSON or an unreadable body.",
    401: "Missing or unknown API key (only when API keys are configured).",
    404: "No such route.",
    413: "The body is larger than MAX_BODY_BYTES, or the batch holds more applications than MAX_BATCH_SIZE.",
    415: "The body is not sent as application/json.",
    422: "The body breaks the applicant schema (or the model refused it); `errors` names each field.",
    500: "Unexpected error in the facade (no details are exposed).",
    502: "The scoring server answered with an error or an unusable body.",
    503: (
        "The scoring server or the model registry is unreachable (or known to be down), the served "
        "version is unknown, too many predictions are in flight, the decision could not be recorded "
        "(then no decision is returned), or the service is shutting down. Retry after the seconds in "
        "Retry-After."
    ),
    504: "The scoring server did not answer in time.",
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The accepted credentials: the X-API-Key header or a bearer token.",
            "schema": {"type": "string"},
            "required": True,
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 1},
            "required": True,
        }
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses, all served as problem+json."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        responses[status] = {"model": Problem, "description": _DESCRIPTIONS[status]}
        if status in _HEADERS:
            responses[status]["headers"] = _HEADERS[status]
    return responses


def openapi_for(app: FastAPI, settings: Settings) -> Callable[[], dict[str, Any]]:
    """The app's ``openapi`` method: FastAPI's document with the touches below, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = _with_problem_media_type(FastAPI.openapi(app))
            schema = _with_batch_cap(schema, settings.MAX_BATCH_SIZE)
            if not settings.api_keys:
                schema = _without_security(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def _with_problem_media_type(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare error responses as application/problem+json, which is what the handlers send.

    NB: FastAPI files every ``responses=`` model under the route's own media type (JSON, or
    Markdown for the model card).
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if int(status) >= 400 and len(content) == 1:
                    response["content"] = {PROBLEM_MEDIA_TYPE: next(iter(content.values()))}
    return schema


def _with_batch_cap(schema: dict[str, Any], cap: int) -> dict[str, Any]:
    """Publish MAX_BATCH_SIZE as the batch's maxItems: a client can see the cap it will meet."""
    applications = schema["components"]["schemas"]["BatchIn"]["properties"]["applications"]
    applications["maxItems"] = cap
    return schema


def _without_security(schema: dict[str, Any]) -> dict[str, Any]:
    """With no API key configured nothing is checked, so the document declares no security either."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.pop("security", None)
    schema.get("components", {}).pop("securitySchemes", None)
    return schema
