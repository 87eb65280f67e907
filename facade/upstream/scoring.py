"""Client of MLflow's scoring server (``mlflow models serve``): the one place its failures are translated.

Endpoints used: ``GET /ping`` (is the server up) and ``POST /invocations`` (score rows sent as
``dataframe_split``; answers one record per row, the output row of ``model_code.contract``, or a
400 whose ``violations`` name the broken rules).
Error bodies of the scoring server can echo the request and carry a stack trace: they are
never logged nor passed on; only status codes and exception class names are logged.

Every call has the app's connect, read and pool deadlines; a call that could not connect is
retried with jittered backoff (stamina); and a circuit breaker answers at once while the
server is known to be down. ``/ping`` is never refused by the breaker: readiness probes it
live, and its success closes the circuit, so recovery shows within one probe.

One client per scoring server (``facade.upstream.backends`` holds them): each counts its calls in
flight, so that the client of a server the traffic has left is closed only once they are done. The
challenger's client is not ``instrumented``: its failures and latency are the shadow's metrics,
never the champion's ``upstream_*``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence

import httpx
import stamina
from pydantic import BaseModel, ValidationError

from facade.contract import ScoredRow
from facade.core.problems import FieldError
from facade.errors import BadUpstreamResponse, CircuitOpen, ModelRejectedInput, ModelTimeout, ModelUnavailable
from facade.upstream.breaker import CircuitBreaker
from facade.upstream.metrics import UPSTREAM_REQUEST_DURATION, UPSTREAM_RETRIES, ErrorKind, count_error
from model_code.contract import REFUSAL_ERROR_CODE, Violation
from model_code.schema import FEATURE_NAMES, FEATURES_BY_NAME

logger = logging.getLogger(__name__)

PING = "/ping"
INVOCATIONS = "/invocations"

# NB: only a refused or failed connection is retried: the request cannot have reached the model.
# Not a ConnectTimeout (it already spent a whole connect deadline on a host that does not answer),
# and never a read timeout or a connection broken after the body was sent: the model may be
# scoring it. The backoff starts at 50 ms with up to 50 ms of jitter; the whole retry loop gives
# up after RETRY_BUDGET_SECONDS.
RETRY_ON = httpx.ConnectError
RETRY_WAIT_INITIAL = 0.05
RETRY_WAIT_MAX = 0.5
RETRY_WAIT_JITTER = 0.05
RETRY_BUDGET_SECONDS = 2.0
# NB: the failures that prove the server down and count towards opening the circuit.
UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout)


class _Invocations(BaseModel):
    predictions: list[ScoredRow]


class _Refusal(BaseModel):
    """The pyfunc's refusal of bad input (``model_code.contract.refusal``), read as data."""

    error_code: str
    violations: list[Violation]


class ScoringClient:
    """Calls the scoring server through the app's pooled ``httpx.AsyncClient``, behind a circuit breaker."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        breaker: CircuitBreaker,
        retry_attempts: int,
        *,
        name: str = "scoring server",
        instrumented: bool = True,
    ) -> None:
        self._http = http
        self.breaker = breaker
        self._retry_attempts = retry_attempts
        self.name = name
        self._instrumented = instrumented
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def idle(self) -> None:
        """Return once no call of this client is in flight."""
        await self._idle.wait()

    async def ping(self) -> None:
        """Return when the scoring server answers ``/ping`` with 200, raise ModelUnavailable otherwise."""
        response = await self._send("GET", PING, gated=False)
        if response.status_code != 200:
            self._count("status")
            logger.warning("%s /ping answered %d", self.name, response.status_code)
            raise ModelUnavailable(f"The scoring server answered /ping with {response.status_code}.")

    async def predict(self, rows: Sequence[Mapping[str, object]]) -> list[ScoredRow]:
        """Score ``rows`` (applicant dicts) in one call; one ScoredRow per row, in order."""
        payload = {
            "dataframe_split": {
                "columns": list(FEATURE_NAMES),
                "data": [[row[name] for name in FEATURE_NAMES] for row in rows],
            }
        }
        response = await self._send("POST", INVOCATIONS, json=payload)
        if response.status_code == 400 and (rejected := _rejected_fields(response)) is not None:
            # NB: the facade validates the same schema first, so this means the two drifted apart.
            logger.warning("%s refused input the facade accepted: %d field(s)", self.name, len(rejected))
            raise ModelRejectedInput("The model refused the applicant data.", rejected)
        if response.status_code != 200:
            self._count("status")
            logger.warning("%s /invocations answered %d", self.name, response.status_code)
            raise BadUpstreamResponse(f"The scoring server answered {response.status_code}.")
        try:
            scored = _Invocations.model_validate_json(response.content).predictions
        except ValidationError as exc:
            # NB: never log the ValidationError itself: it quotes the body it failed on.
            self._count("bad_response")
            logger.warning("%s answer breaks the output schema (%d errors)", self.name, exc.error_count())
            raise BadUpstreamResponse(
                "The scoring server's answer breaks the model's output schema."
            ) from None
        if len(scored) != len(rows):
            self._count("bad_response")
            logger.warning("%s answered %d rows for %d", self.name, len(scored), len(rows))
            raise BadUpstreamResponse("The scoring server answered a different number of rows.")
        return scored

    async def _send(
        self, method: str, endpoint: str, json: object = None, *, gated: bool = True
    ) -> httpx.Response:
        """One call: refused at once while the circuit is open, retried only when it could not connect."""
        # NB: counted before the first await, so a client taken for a call is never closed under it.
        self.in_flight += 1
        self._idle.clear()
        try:
            return await self._send_counted(method, endpoint, json, gated=gated)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    async def _send_counted(self, method: str, endpoint: str, json: object, *, gated: bool) -> httpx.Response:
        if gated and not self.breaker.allow():
            self._count("circuit_open")
            raise CircuitOpen(
                "The scoring server is down; retry when it is back.", retry_after=self.breaker.retry_after()
            )
        start = time.perf_counter()
        try:
            response = await self._request_with_retries(method, endpoint, json)
        except httpx.TransportError as exc:
            if isinstance(exc, UNREACHABLE):
                self.breaker.record_failure()
            else:
                self.breaker.record_inconclusive()
            logger.warning("%s %s: %s", self.name, endpoint, type(exc).__name__)
            if isinstance(exc, httpx.TimeoutException):
                self._count("timeout")
                raise ModelTimeout("The scoring server did not answer in time.") from exc
            self._count("connect")
            raise ModelUnavailable("The scoring server is unreachable.") from exc
        except BaseException:
            self.breaker.record_inconclusive()  # NB: e.g. cancelled because the client went away
            raise
        finally:
            if self._instrumented:
                UPSTREAM_REQUEST_DURATION.labels(endpoint).observe(time.perf_counter() - start)
        self.breaker.record_success()
        return response

    async def _request_with_retries(self, method: str, endpoint: str, json: object) -> httpx.Response:
        # NB: retry_context rather than stamina's decorator or RetryingCaller: those hand the call's
        # arguments (the applicants) to stamina's retry log hook, this block hands it nothing.
        async for attempt in stamina.retry_context(
            on=RETRY_ON,
            attempts=self._retry_attempts,
            timeout=RETRY_BUDGET_SECONDS,
            wait_initial=RETRY_WAIT_INITIAL,
            wait_max=RETRY_WAIT_MAX,
            wait_jitter=RETRY_WAIT_JITTER,
        ):
            with attempt:
                if attempt.num > 1 and self._instrumented:
                    UPSTREAM_RETRIES.inc()
                response = await self._http.request(method, endpoint, json=json)
        return response

    def _count(self, kind: ErrorKind) -> None:
        if self._instrumented:
            count_error(kind)


def _rejected_fields(response: httpx.Response) -> list[FieldError] | None:
    """The fields and rules of the pyfunc's structured refusal, else None (not a refusal).

    Only fields of the schema are kept, and each rule is the schema's own text, so nothing the
    upstream wrote is passed on verbatim.
    """
    try:
        body = _Refusal.model_validate_json(response.content)
    except ValidationError:
        return None
    if body.error_code != REFUSAL_ERROR_CODE:
        return None
    errors: list[FieldError] = []
    for violation in body.violations:
        feature = FEATURES_BY_NAME.get(violation.field)
        if feature is None:
            continue
        rule = "is required" if violation.rule == "is required" else feature.rule()
        errors.append(FieldError(field=feature.name, rule=rule))
    return errors
