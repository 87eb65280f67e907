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

from facade.core.middleware import problem_instance
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
# NB: the rules of query and path parameters, by name, registered by the routes that declare them
# (``register_parameter_rules``); pydantic's own messages can quote the value.
_PARAMETER_RULES: dict[str, str] = {}
_PARAMETER_SOURCES = ("query", "path")


def register_parameter_rules(**rules: str) -> None:
    """Word the errors of these query or path parameters (name=rule, e.g. ``since="must be ..."``)."""
    _PARAMETER_RULES.update(rules)


def _rule(kind: str, loc: list[str]) -> str:
    if loc[:1] and loc[0] in _PARAMETER_SOURCES:
        if kind == "extra_forbidden":
            return "is not an allowed parameter"
        return _PARAMETER_RULES.get(loc[-1], "is not valid")
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
            problem_instance(request),
            400,
            title="Malformed JSON",
            slug="malformed-json",
            detail="The request body is not valid JSON.",
            errors=[FieldError(field="body", rule="must be valid JSON")],
        )
    errors = field_errors(exc.errors())
    if all(str(error["loc"][0]) in _PARAMETER_SOURCES for error in exc.errors() if error["loc"]):
        noun = "parameter breaks its rule" if len(errors) == 1 else "parameters break their rules"
        detail = f"{len(errors)} {noun}."
    else:
        noun = "field breaks" if len(errors) == 1 else "fields break"
        detail = f"{len(errors)} {noun} the applicant schema."
    return problem_response(
        problem_instance(request),
        422,
        title="Request validation failed",
        slug="validation-error",
        detail=detail,
        errors=errors,
    )


def install_validation_handler(app: FastAPI) -> None:
    """Answer request validation errors as problem+json in the schema's words."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
