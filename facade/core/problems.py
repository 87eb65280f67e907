"""RFC 9457 problem details: the one shape of every error body, and the exception that carries one.

Every error a client sees is a ``Problem`` served as ``application/problem+json``; it never holds
a submitted value or an upstream body. ``ProblemError`` is the base of the exceptions raised on
purpose (the facade's own tree is drawn in ``facade.errors``); ``facade.core.handlers`` turns
them, and the framework's own errors, into responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import ClassVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://credit-score.example/problems/"


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


class QuotaProblem(Problem):
    """A 429 problem: the windows of the client's rate limit that are used up."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "type": PROBLEM_TYPE_BASE + "quota-exceeded",
                    "title": "Quota exceeded",
                    "status": 429,
                    "detail": "This client's quota (50-per-second) is used up; retry after 1 s.",
                    "instance": "/api/v1/predict",
                    "violated-policies": ["50-per-second"],
                }
            ]
        },
    )

    violated_policies: list[str] = Field(
        alias="violated-policies", description="Names of the RateLimit-Policy items whose quota is used up."
    )


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    request_path: str,
    status: int,
    *,
    title: str | None = None,
    slug: str | None = None,
    detail: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, object] | None = None,
) -> ProblemResponse:
    """Build the problem+json response; without a ``slug`` the type is about:blank and the title the
    status phrase, as RFC 9457 requires. ``extensions`` are the type's own members (RFC 9457 3.2)."""
    problem = Problem(
        type=PROBLEM_TYPE_BASE + slug if slug else "about:blank",
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request_path,
        errors=list(errors) if errors is not None else None,
    )
    body = problem.model_dump(exclude_none=True)
    return ProblemResponse({**body, **(extensions or {})}, status_code=status, headers=headers)


class ProblemError(Exception):
    """An error answered as one problem type: its status, slug (the type URI's last part) and title.

    ``detail`` is written by the facade, never copied from a request or an upstream body.
    """

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

    def response(self, request_path: str) -> ProblemResponse:
        return problem_response(
            request_path,
            self.status,
            title=self.title,
            slug=self.slug,
            detail=self.detail,
            errors=self.errors,
            headers=self.headers,
        )
