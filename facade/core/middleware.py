"""Pure ASGI middleware around every request: instrumentation, a last-resort 500, the body cap.

Outermost first: ``InstrumentationMiddleware`` (request id, access log, HTTP metrics) sees every
answer, including the 500s and 413s produced inside it; then ``UnhandledErrorMiddleware``; then
``BodySizeLimitMiddleware`` in front of the app.

NB: pure ASGI rather than ``BaseHTTPMiddleware``, which runs the app in a separate task and
buffers the response.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
import uuid

from fastapi.routing import iter_route_contexts
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facade.core.logs import ACCESS_LOGGER
from facade.core.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS, HTTP_REQUESTS_IN_FLIGHT
from facade.core.problems import ProblemResponse, problem_response

logger = logging.getLogger(__name__)
access_logger = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID_HEADER = "X-Request-ID"
# NB: a caller's id is kept only when it looks like an id; anything else is replaced, not logged.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

UNMATCHED_ROUTE = "<unmatched>"
# NB: a route adds fields of its own to its access log line here (never request data).
ACCESS_LOG_FIELDS = "access_log_fields"
# NB: where a route finds this request's id (the one its answer and its access log line carry).
REQUEST_ID_STATE = "request_id"
# NB: and headers to its answer, whatever the answer turns out to be (a model, a Response, an error).
RESPONSE_HEADERS = "response_headers"
_ROUTE_TEMPLATE = "facade.route_template"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The template of the app's route matching this request (``/api/v1/predict``), or ``<unmatched>``.

    NB: matched again here because ``scope["route"]`` holds the route as declared in its router,
    without the prefixes it was included under. A route matching by path but not by method
    (a 405) still names its template. Matched once a request (the scope keeps the answer): the
    instrumentation and the last-resort 500 both ask.
    """
    if _ROUTE_TEMPLATE not in scope:
        scope[_ROUTE_TEMPLATE] = _cached_template(scope)
    return str(scope[_ROUTE_TEMPLATE])


_CACHED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _cached_template(scope: Scope) -> str:
    """The template, remembered per app, method and path for the routes without path parameters.

    NB: matching walks every route (3 % of the facade's CPU at 32 clients); the cache only holds
    the standard methods and paths that are templates themselves, so it is bounded by the app's
    routes, whatever is sent (with h11, any method token reaches the app).
    """
    app = scope["app"]
    cache: dict[tuple[str, str], str] | None = getattr(app, "_facade_route_templates", None)
    if cache is None:
        cache = {}
        app._facade_route_templates = cache
    key = (str(scope["method"]), str(scope["path"]))
    template = cache.get(key)
    if template is None:
        template = _match_template(scope)
        if template == key[1] and key[0] in _CACHED_METHODS:
            cache[key] = template
    return template


def _match_template(scope: Scope) -> str:
    partial = None
    for route in iter_route_contexts(scope["app"].routes):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(route.path_format)
        if match is Match.PARTIAL and partial is None:
            partial = str(route.path_format)
    return partial or UNMATCHED_ROUTE


def annotate_access_log(request: Request, **fields: object) -> None:
    """Add ``fields`` to this request's access log line (ids and counts, never request data)."""
    extra: dict[str, object] = getattr(request.state, ACCESS_LOG_FIELDS, {})
    setattr(request.state, ACCESS_LOG_FIELDS, {**extra, **fields})


def request_id_of(request: Request) -> str:
    """This request's id, as the X-Request-ID of its answer and its access log line give it."""
    return str(getattr(request.state, REQUEST_ID_STATE, "")) or uuid.uuid4().hex


def problem_instance(request: Request) -> str:
    """The ``instance`` of a problem about this request: its path, or its route's template when the
    route has path parameters, so that a submitted id is never repeated in the answer."""
    template = route_template(request.scope)
    return template if "{" in template else request.url.path


def add_response_headers(request: Request, headers: dict[str, str]) -> None:
    """Send ``headers`` with this request's answer, be it a success or an error raised later."""
    extra: dict[str, str] = getattr(request.state, RESPONSE_HEADERS, {})
    setattr(request.state, RESPONSE_HEADERS, {**extra, **headers})


def _method(scope: Scope) -> str:
    # NB: a client can send any method name; keep the label set (and the log) bounded.
    return str(scope["method"]) if scope["method"] in _KNOWN_METHODS else "OTHER"


class InstrumentationMiddleware:
    """Per request: an X-Request-ID on the response (and the headers a route added with
    ``add_response_headers``), one access log line, and the HTTP metrics.

    The log line holds the method, the route template (never the raw path or query), the status,
    the latency in milliseconds, the request id and the fields the route left in
    ``request.state`` with ``annotate_access_log`` (the predict routes: the application ids they
    answered). Nothing from the body is logged. The metrics count and time the request by method,
    endpoint (the same template) and status.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        scope.setdefault("state", {})[REQUEST_ID_STATE] = request_id
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                added = [(REQUEST_ID_HEADER.lower().encode(), request_id.encode())]
                extra: dict[str, str] = scope.get("state", {}).get(RESPONSE_HEADERS, {})
                added += [(name.lower().encode(), value.encode()) for name, value in extra.items()]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        HTTP_REQUESTS_IN_FLIGHT.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            elapsed = time.perf_counter() - start
            HTTP_REQUESTS_IN_FLIGHT.dec()
            # NB: read after the call: the router stores the matched route on the shared scope.
            method, route = _method(scope), route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_REQUEST_DURATION.labels(method, route, str(status)).observe(elapsed)
            fields: dict[str, object] = {
                "method": method,
                "route": route,
                "status": status,
                "latency_ms": round(elapsed * 1000, 2),
                "request_id": request_id,
            }
            fields.update(scope.get("state", {}).get(ACCESS_LOG_FIELDS, {}))
            access_logger.info("%s %s %d", method, route, status, extra=fields)


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
            # NB: the instance as every other problem names it: no path parameter repeated.
            instance = problem_instance(Request(scope))
            response = problem_response(instance, 500, detail="An unexpected error occurred.")
            await response(scope, receive, send)


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
        return problem_response(request_path, 413, title=self.title, slug=self.slug, detail=self.detail)


class BodySizeLimitMiddleware:
    """Refuses a body over ``max_bytes`` with a 413 problem before it is parsed.

    A declared Content-Length over the cap is answered at once, without calling the app; a body
    streamed without one (or longer than declared) is counted as it arrives, and reading past the
    cap raises BodyTooLarge, which the app's error handlers answer with the same 413.

    NB: not ``FastAPI(max_body_size=...)``: it calls the app even when Content-Length is already
    too large, and answers routes that do not read the body with a text/plain 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await BodyTooLarge(self.max_bytes).response(scope["path"])(scope, receive, send)
            return
        received = 0

        async def receive_capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_capped, send)
