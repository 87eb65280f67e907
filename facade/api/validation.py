"""Request validation errors in the applicant schema's words: field paths and rules, never values.

FastAPI raises ``RequestValidationError`` with pydantic's errors, which carry the submitted
``input`` and a ``ctx`` that can quote it; this handler keeps only where (the dotted path) and
which rule (the schema's own wording for an applicant field), and answers one problem: 400 for a
body that is not JSON, 422 otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from facade.core.problems import FieldError, ProblemResponse, problem_response
from model_code.schema import FEATURES_BY_NAME

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
_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def _rule(kind: str, loc: list[str]) -> str:
    feature = FEATURES_BY_NAME.get(loc[-1]) if loc else None
    if feature is not None and kind not in ("missing", "extra_forbidden"):
        return feature.rule()  # NB: one wording per field, whatever pydantic check failed
    if kind == "too_short" and loc == ["applications"]:
        return "must contain at least 1 application"
    return _GENERIC_RULES.get(kind, "is not valid")


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


async def _on_validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    if any(error["type"] == "json_invalid" for error in exc.errors()):
        return problem_response(
            request.url.path,
            400,
            title="Malformed JSON",
            slug="malformed-json",
            detail="The request body is not valid JSON.",
            errors=[FieldError(field="body", rule="must be valid JSON")],
        )
    errors = field_errors(exc.errors())
    noun = "field breaks" if len(errors) == 1 else "fields break"
    return problem_response(
        request.url.path,
        422,
        title="Request validation failed",
        slug="validation-error",
        detail=f"{len(errors)} {noun} the applicant schema.",
        errors=errors,
    )


def install_validation_handler(app: FastAPI) -> None:
    """Answer request validation errors as problem+json in the schema's words."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
