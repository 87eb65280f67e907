"""The translation of raised errors into problem+json responses, registered once on the app.

``ProblemError`` subclasses answer as themselves; the framework's own HTTP errors (404, 405, 400
for an unreadable body, 413 from the body cap) answer as plain problems. Request validation
errors are the API's to word (``facade.api.validation``); anything else is the last-resort 500 of
``facade.core.middleware.UnhandledErrorMiddleware``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from facade.core.middleware import BodyTooLarge, problem_instance
from facade.core.problems import ProblemError, ProblemResponse, problem_response


async def _on_problem_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ProblemError)
    return exc.response(problem_instance(request))


async def _on_http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, BodyTooLarge):
        return exc.response(problem_instance(request))
    # NB: only the framework raises these (404, 405, 400 for an unreadable body); their details are
    # fixed phrases, never request data.
    return problem_response(
        problem_instance(request),
        exc.status_code,
        detail=exc.detail if isinstance(exc.detail, str) else None,
        headers=dict(exc.headers) if exc.headers else None,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer ProblemError and the framework's HTTP errors as problem+json."""
    app.add_exception_handler(ProblemError, _on_problem_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
