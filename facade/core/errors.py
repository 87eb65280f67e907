"""The facade's own errors and their single translation into RFC 9457 problem+json responses.

Every error body a client sees is built here. None of them carries a submitted value or an
upstream body: validation errors keep only the field path and the rule, never pydantic's
``input`` or ``ctx``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from model_code.schema import FEATURES_BY_NAME

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://credit-score.example/problems/"
# NB: how long a client should wait before retrying a 503; the scoring server restarts in seconds.
RETRY_AFTER_SECONDS = 5
# NB: a shed request may succeed as soon as one in flight finishes (tens of milliseconds).
OVERLOAD_RETRY_AFTER_SECONDS = 1
WWW_AUTHENTICATE = 'ApiKey realm="credit-score", header="X-API-Key", Bearer realm="credit-score"'


class FieldError(BaseModel):
    """One broken rule: where in the request, and what the value must be (never the value)."""

    field: str = Field(description="Dotted path in the body, e.g. `applications.3.age`.")
    rule: str = Field(description="The rule, in words, e.g. `must be an integer between 18 and 100`.")


class Problem(BaseModel):
    """An RFC 9457 problem detail, served as application/problem+json."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": PROBLEM_TYPE_BASE + "validation-error",
                    "title": "Request validation failed",
                    "status": 422,
                    "detail": "1 field breaks the applicant schema.",
                    "instance": "/api/v1/predict",
                    "errors": [{"field": "age", "rule": "must be an integer between 18 and 100"}],
                }
            ]
        }
    )

    type: str = Field(default="about:blank", description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldError] | None = None


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    request_path: str,
    status: int,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    detail: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    """Build the problem+json response; ``title`` defaults to the status phrase, as about:blank requires."""
    problem = Problem(
        type=type_,
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request_path,
        errors=list(errors) if errors is not None else None,
    )
    return ProblemResponse(problem.model_dump(exclude_none=True), status_code=status, headers=headers)


class FacadeError(Exception):
    """Base of the errors the facade raises on purpose; each maps to one problem type."""

    status: ClassVar[int] = 500
    slug: ClassVar[str | None] = None
    title: ClassVar[str] = "Internal Server Error"

    def __init__(self, detail: str, errors: Sequence[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None

    @property
    def headers(self) -> dict[str, str] | None:
        return None


class UnsupportedMediaType(FacadeError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported Media Type"


class BatchTooLarge(FacadeError):
    status = 413
    slug = "batch-too-large"
    title = "Batch too large"

    def __init__(self, cap: int) -> None:
        super().__init__(
            f"A batch holds at most {cap} applications; split it into smaller batches.",
            [FieldError(field="applications", rule=f"must contain at most {cap} applications")],
        )


class UpstreamError(FacadeError):
    """Raised at the boundary to the scoring server or the model registry."""


class ModelUnavailable(UpstreamError):
    status = 503
    slug = "model-unavailable"
    title = "Model unavailable"

    def __init__(
        self,
        detail: str,
        errors: Sequence[FieldError] | None = None,
        retry_after: int = RETRY_AFTER_SECONDS,
    ) -> None:
        super().__init__(detail, errors)
        self.retry_after = max(1, retry_after)

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class CircuitOpen(ModelUnavailable):
    """The scoring server is known to be down: answered at once, without calling it."""

    slug = "circuit-open"
    title = "Model unavailable (circuit open)"


class RegistryUnavailable(ModelUnavailable):
    slug = "registry-unavailable"
    title = "Model registry unavailable"


class NotReady(ModelUnavailable):
    slug = "not-ready"
    title = "Not ready"


class ModelTimeout(UpstreamError):
    status = 504
    slug = "model-timeout"
    title = "Model timed out"


class BadUpstreamResponse(UpstreamError):
    status = 502
    slug = "bad-upstream-response"
    title = "Bad response from the scoring server"


class ModelRejectedInput(UpstreamError):
    status = 422
    slug = "model-rejected-input"
    title = "The model rejected the applicant data"


class Overloaded(FacadeError):
    """More predictions in flight than MAX_IN_FLIGHT: shed at once rather than queued."""

    status = 503
    slug = "overloaded"
    title = "Too many predictions in flight"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(OVERLOAD_RETRY_AFTER_SECONDS)}


class Unauthorized(FacadeError):
    status = 401
    slug = "unauthorized"
    title = "Missing or unknown API key"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": WWW_AUTHENTICATE}


class BodyTooLarge(StarletteHTTPException):
    """A body past MAX_BODY_BYTES, found while reading it.

    NB: a Starlette HTTPException because FastAPI's body reader passes those on unchanged and
    turns any other exception from ``receive`` into a 400.
    """

    title = "Request body too large"
    slug = "body-too-large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"The request body is larger than {limit:,} bytes.")

    def response(self, request_path: str) -> ProblemResponse:
        return problem_response(
            request_path, 413, title=self.title, type_=PROBLEM_TYPE_BASE + self.slug, detail=self.detail
        )


# NB: rules for errors that are not about one applicant field; anything unlisted gets a generic
# rule rather than pydantic's message, which can quote the input.
_GENERIC_RULES = {
    "missing": "is required",
    "extra_forbidden": "is not an allowed field",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
}


def _rule(kind: str, loc: list[str]) -> str:
    feature = FEATURES_BY_NAME.get(loc[-1]) if loc else None
    if feature is not None and kind not in ("missing", "extra_forbidden"):
        return feature.rule()  # NB: one wording per field, whatever pydantic check failed
    if kind == "too_short" and loc == ["applications"]:
        return "must contain at least 1 application"
    return _GENERIC_RULES.get(kind, "is not valid")


_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """Translate pydantic/FastAPI validation errors into (field path, rule) pairs, dropping values."""
    translated = []
    for error in errors:
        loc = [str(part) for part in error["loc"]]
        if loc[:1] == ["body"]:
            loc = loc[1:]
        rule = _rule(error["type"], loc)
        if error["type"] == "extra_forbidden" and loc and not _SAFE_KEY.fullmatch(loc[-1]):
            # NB: an unknown key is the client's own text and could carry personal data
            # ("John Doe SSN ..."): repeated only when it looks like a field name.
            loc[-1] = "<unknown field>"
        translated.append(FieldError(field=".".join(loc) or "body", rule=rule))
    return translated


def install_error_handlers(app: FastAPI) -> None:
    """Register the one translation of every error into problem+json."""

    async def on_facade_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, FacadeError)
        return problem_response(
            request.url.path,
            exc.status,
            title=exc.title,
            type_=PROBLEM_TYPE_BASE + exc.slug if exc.slug else "about:blank",
            detail=exc.detail,
            errors=exc.errors,
            headers=exc.headers,
        )

    async def on_validation_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, RequestValidationError)
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            return problem_response(
                request.url.path,
                400,
                title="Malformed JSON",
                type_=PROBLEM_TYPE_BASE + "malformed-json",
                detail="The request body is not valid JSON.",
                errors=[FieldError(field="body", rule="must be valid JSON")],
            )
        errors = field_errors(exc.errors())
        noun = "field breaks" if len(errors) == 1 else "fields break"
        return problem_response(
            request.url.path,
            422,
            title="Request validation failed",
            type_=PROBLEM_TYPE_BASE + "validation-error",
            detail=f"{len(errors)} {noun} the applicant schema.",
            errors=errors,
        )

    async def on_http_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc, BodyTooLarge):
            return exc.response(request.url.path)
        # NB: only the framework raises these (404, 405, 400 for an unreadable body); their
        # details are fixed phrases, never request data.
        return problem_response(
            request.url.path,
            exc.status_code,
            detail=exc.detail if isinstance(exc.detail, str) else None,
            headers=dict(exc.headers) if exc.headers else None,
        )

    app.add_exception_handler(FacadeError, on_facade_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


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
        "version is unknown, too many predictions are in flight, or the service is shutting down. "
        "Retry after the seconds in Retry-After."
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
