"""Pure ASGI middleware around every request: HTTP metrics, and a last-resort 500 problem.

NB: pure ASGI rather than ``BaseHTTPMiddleware``, which runs the app in a separate task and
buffers the response.
"""

from __future__ import annotations

import logging
import time
import traceback

from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facade.core.errors import problem_response
from facade.core.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS, HTTP_REQUESTS_IN_FLIGHT

logger = logging.getLogger(__name__)

UNMATCHED_ROUTE = "<unmatched>"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The template of the app's route matching this request (``/api/v1/predict``), or ``<unmatched>``.

    NB: matched again here because ``scope["route"]`` holds the route as declared in its router,
    without the prefixes it was included under. A route matching by path but not by method
    (a 405) still names its template.
    """
    partial = None
    for route in iter_route_contexts(scope["app"].routes):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(route.path_format)
        if match is Match.PARTIAL and partial is None:
            partial = str(route.path_format)
    return partial or UNMATCHED_ROUTE


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        # NB: a client can send any method name; keep the label set bounded.
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        HTTP_REQUESTS_IN_FLIGHT.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            HTTP_REQUESTS_IN_FLIGHT.dec()
            # NB: read after the call: the router stores the matched route on the shared scope.
            route = route_template(scope)
            HTTP_REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - start)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()


class UnhandledErrorMiddleware:
    """Turns an exception nothing else handled into a bare 500 problem, logged without its message.

    NB: Starlette's own handler would re-raise to the server, which logs ``str(exc)``; an
    exception message may quote applicant data, so only the class and the code frames are logged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except Exception as exc:
            logger.error(
                "unhandled %s on %s %s\n%s",
                type(exc).__name__,
                scope["method"],
                route_template(scope),
                "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
            )
            if started:
                return  # NB: too late for a problem body; the server closes the connection
            response = problem_response(scope["path"], 500, detail="An unexpected error occurred.")
            await response(scope, receive, send)
