"""Client of MLflow's scoring server (``mlflow models serve``): the one place its failures are translated.

Endpoints used: ``GET /ping`` (is the server up) and ``POST /invocations`` (score rows sent as
``dataframe_split``; answers one record per row with ``model_code.schema.OUTPUT_COLUMNS``).
Error bodies of the scoring server can echo the request and carry a stack trace: they are
never logged nor passed on; only status codes and exception class names are logged.

Every call has the app's connect, read and pool deadlines; a call that could not connect is
retried with jittered backoff (stamina); and a circuit breaker answers at once while the
server is known to be down. ``/ping`` is never refused by the breaker: readiness probes it
live, and its success closes the circuit, so recovery shows within one probe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

import httpx
import stamina
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from facade.breaker import BreakerState, CircuitBreaker
from facade.core.errors import (
    BadUpstreamResponse,
    CircuitOpen,
    FieldError,
    ModelRejectedInput,
    ModelTimeout,
    ModelUnavailable,
)
from facade.core.metrics import CIRCUIT_OPEN, UPSTREAM_ERRORS, UPSTREAM_REQUEST_DURATION, UPSTREAM_RETRIES
from model_code.contract import REFUSAL_ERROR_CODE, REJECTED, Violation
from model_code.reasons import MAX_REASONS, REASONS_BY_CODE, SCORE_MAX, SCORE_MIN
from model_code.schema import FEATURE_NAMES, FEATURES_BY_NAME
from model_code.tracking import RUN_ID_PATTERN

logger = logging.getLogger(__name__)

PING = "/ping"
INVOCATIONS = "/invocations"

Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]

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


def _catalogued(code: str) -> str:
    if code not in REASONS_BY_CODE:
        raise ValueError("is not a reason code of model_code.reasons")
    return code


class ScoredReason(BaseModel):
    """One principal reason of a scored row: a catalogued code and what it added to the risk.

    NB: the upstream's description is ignored: the text a client reads comes from the catalogue
    (``model_code.reasons``), so a model can never put words of its own into an adverse-action notice.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: Annotated[str, AfterValidator(_catalogued)]
    contribution: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]

    @property
    def description(self) -> str:
        return REASONS_BY_CODE[self.code].description


class ScoredRow(BaseModel):
    """One record of the scoring server's answer (``model_code.schema.OUTPUT_COLUMNS``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    prediction: Literal["APPROVED", "REJECTED"]
    approval_probability: Probability
    rejection_probability: Probability
    risk_score: Probability
    confidence: Probability
    credit_score: Annotated[int, Field(ge=SCORE_MIN, le=SCORE_MAX)]
    reasons: Annotated[list[ScoredReason], Field(max_length=MAX_REASONS)]
    model_run_id: str = Field(pattern=f"^{RUN_ID_PATTERN}$")

    @model_validator(mode="after")
    def _principal_reasons(self) -> ScoredRow:
        codes = [reason.code for reason in self.reasons]
        if len(set(codes)) != len(codes):
            raise ValueError("reason codes must be distinct")
        contributions = [reason.contribution for reason in self.reasons]
        if contributions != sorted(contributions, reverse=True):
            raise ValueError("reasons must come largest contribution first")
        # NB: the API promises reasons with every rejection (US Regulation B asks for the principal
        # reasons of a denial); an adverse decision without them is not passed on.
        if self.prediction == REJECTED and not self.reasons:
            raise ValueError("a rejection must carry at least one reason")
        return self


class _Invocations(BaseModel):
    predictions: list[ScoredRow]


class _Refusal(BaseModel):
    """The pyfunc's refusal of bad input (``model_code.contract.refusal``), read as data."""

    error_code: str
    violations: list[Violation]


class ScoringClient:
    """Calls the scoring server through the app's pooled ``httpx.AsyncClient``, behind a circuit breaker."""

    def __init__(self, http: httpx.AsyncClient, breaker: CircuitBreaker, retry_attempts: int) -> None:
        self._http = http
        self.breaker = breaker
        self._retry_attempts = retry_attempts

    async def ping(self) -> None:
        """Return when the scoring server answers ``/ping`` with 200, raise ModelUnavailable otherwise."""
        response = await self._send("GET", PING, gated=False)
        if response.status_code != 200:
            UPSTREAM_ERRORS.labels("status").inc()
            logger.warning("scoring server /ping answered %d", response.status_code)
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
            logger.warning("scoring server refused input the facade accepted: %d field(s)", len(rejected))
            raise ModelRejectedInput("The model refused the applicant data.", rejected)
        if response.status_code != 200:
            UPSTREAM_ERRORS.labels("status").inc()
            logger.warning("scoring server /invocations answered %d", response.status_code)
            raise BadUpstreamResponse(f"The scoring server answered {response.status_code}.")
        try:
            scored = _Invocations.model_validate_json(response.content).predictions
        except ValidationError as exc:
            # NB: never log the ValidationError itself: it quotes the body it failed on.
            UPSTREAM_ERRORS.labels("bad_response").inc()
            logger.warning("scoring server answer breaks the output schema (%d errors)", exc.error_count())
            raise BadUpstreamResponse(
                "The scoring server's answer breaks the model's output schema."
            ) from None
        if len(scored) != len(rows):
            UPSTREAM_ERRORS.labels("bad_response").inc()
            logger.warning("scoring server answered %d rows for %d", len(scored), len(rows))
            raise BadUpstreamResponse("The scoring server answered a different number of rows.")
        return scored

    async def _send(
        self, method: str, endpoint: str, json: object = None, *, gated: bool = True
    ) -> httpx.Response:
        """One call: refused at once while the circuit is open, retried only when it could not connect."""
        if gated and not self.breaker.allow():
            UPSTREAM_ERRORS.labels("circuit_open").inc()
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
            logger.warning("scoring server %s: %s", endpoint, type(exc).__name__)
            if isinstance(exc, httpx.TimeoutException):
                UPSTREAM_ERRORS.labels("timeout").inc()
                raise ModelTimeout("The scoring server did not answer in time.") from exc
            UPSTREAM_ERRORS.labels("connect").inc()
            raise ModelUnavailable("The scoring server is unreachable.") from exc
        except BaseException:
            self.breaker.record_inconclusive()  # NB: e.g. cancelled because the client went away
            raise
        finally:
            UPSTREAM_REQUEST_DURATION.labels(endpoint).observe(time.perf_counter() - start)
            CIRCUIT_OPEN.set(self.breaker.state is not BreakerState.CLOSED)
        self.breaker.record_success()
        CIRCUIT_OPEN.set(0)
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
                if attempt.num > 1:
                    UPSTREAM_RETRIES.inc()
                response = await self._http.request(method, endpoint, json=json)
        return response


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
