"""The OpenAPI document: each route's error responses, and the touches FastAPI cannot make by itself.

Routes declare the statuses they can return with ``problem_responses(...)``; ``openapi_for``
then files every error under application/problem+json, publishes MAX_BATCH_SIZE as the batch's
``maxItems``, and declares exactly the security schemes configured: API keys (``APIKeyHeader``,
``HTTPBearer``), OAuth2 client credentials with the deployment's token URL, mutual TLS; none at
all while nobody authenticates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from facade.core.config import Settings
from facade.core.problems import PROBLEM_MEDIA_TYPE, Problem, QuotaProblem
from facade.security.dependencies import OAUTH2_SCHEME

API_KEY_SCHEMES = ("APIKeyHeader", "HTTPBearer")
MUTUAL_TLS_SCHEME = "mutualTLS"

_DESCRIPTIONS = {
    400: "Malformed JSON or an unreadable body.",
    401: (
        "Missing, unknown, expired or otherwise invalid credentials (only when API keys, tokens or "
        "client certificates are configured)."
    ),
    403: "The credentials do not hold the scope this route needs.",
    404: "No such route.",
    413: "The body is larger than MAX_BODY_BYTES, or the batch holds more applications than MAX_BATCH_SIZE.",
    415: "The body is not sent as application/json.",
    422: "The body breaks the applicant schema (or the model refused it); `errors` names each field.",
    500: "Unexpected error in the facade (no details are exposed).",
    502: "The scoring server answered with an error or an unusable body.",
    503: (
        "The scoring server or the model registry is unreachable (or known to be down), the served "
        "version is unknown, too many predictions are in flight, or the service is shutting down. "
        "Retry after the seconds in Retry-After."
    ),
    429: (
        "The client used up its rate limit (problem type quota-exceeded). Retry after the seconds in "
        "Retry-After; RateLimit-Policy and RateLimit describe the quota."
    ),
    504: "The scoring server did not answer in time.",
}
_RATE_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit-Policy": {
        "description": (
            "The client's quota policies (draft-ietf-httpapi-ratelimit-headers-11), e.g. "
            '`"50-per-second";q=50;w=1`; sent on every answer to a rate-limited client.'
        ),
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'What is left of each, e.g. `"50-per-second";r=0;t=1` (remaining, seconds to reset).',
        "schema": {"type": "string"},
    },
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'The accepted credentials; for a bad token, RFC 6750\'s error="invalid_token".',
            "schema": {"type": "string"},
            "required": True,
        }
    },
    403: {
        "WWW-Authenticate": {
            "description": 'RFC 6750\'s error="insufficient_scope" with the scope the route needs.',
            "schema": {"type": "string"},
            "required": True,
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until the used-up window resets.",
            "schema": {"type": "integer", "minimum": 1},
            "required": True,
        },
        **_RATE_LIMIT_HEADERS,
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
        model = QuotaProblem if status == 429 else Problem
        responses[status] = {"model": model, "description": _DESCRIPTIONS[status]}
        if status in _HEADERS:
            responses[status]["headers"] = _HEADERS[status]
    return responses


def openapi_for(app: FastAPI, settings: Settings) -> Callable[[], dict[str, Any]]:
    """The app's ``openapi`` method: FastAPI's document with the touches below, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = _with_problem_media_type(FastAPI.openapi(app))
            schema = _with_batch_cap(schema, settings.MAX_BATCH_SIZE)
            schema = _with_configured_security(schema, settings)
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


def _with_configured_security(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Declare the schemes configured, and only those: what is not checked is not documented either."""
    schemes: dict[str, Any] = schema.get("components", {}).get("securitySchemes", {})
    enabled: set[str] = set()
    if settings.api_keys:
        enabled.update(API_KEY_SCHEMES)
    if settings.tokens_enabled and OAUTH2_SCHEME in schemes:
        enabled.add(OAUTH2_SCHEME)
        flow = schemes[OAUTH2_SCHEME]["flows"]["clientCredentials"]
        flow["tokenUrl"] = settings.OAUTH_TOKEN_URL
    if settings.mutual_tls:
        # NB: OpenAPI 3.1's scheme for client certificates; FastAPI has no class for it.
        schemes[MUTUAL_TLS_SCHEME] = {
            "type": "mutualTLS",
            "description": "A client certificate signed by the CA in TLS_CLIENT_CA_FILE.",
        }
        enabled.add(MUTUAL_TLS_SCHEME)
    for name in list(schemes):
        if name not in enabled:
            del schemes[name]
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if "security" not in operation:
                continue
            kept = [option for option in operation["security"] if set(option) <= enabled]
            if settings.mutual_tls:
                kept.append({MUTUAL_TLS_SCHEME: []})
            if kept:
                operation["security"] = kept
            else:
                del operation["security"]
    if not schemes:
        schema.get("components", {}).pop("securitySchemes", None)
    return schema
