"""Client of MLflow's scoring server (``mlflow models serve``): the one place its failures are translated.

Endpoints used: ``GET /ping`` (is the server up) and ``POST /invocations`` (score rows sent as
``dataframe_split``; answers one record per row with ``model_code.schema.OUTPUT_COLUMNS``).
Error bodies of the scoring server can echo the request and carry a stack trace: they are
never logged nor passed on; only status codes and exception class names are logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from facade.core.errors import (
    BadUpstreamResponse,
    FieldError,
    ModelRejectedInput,
    ModelTimeout,
    ModelUnavailable,
)
from facade.core.metrics import UPSTREAM_ERRORS, UPSTREAM_REQUEST_DURATION
from model_code.schema import FEATURE_NAMES, FEATURES_BY_NAME

logger = logging.getLogger(__name__)

PING = "/ping"
INVOCATIONS = "/invocations"
RUN_ID_PATTERN = r"^[0-9a-f]{32}$"
# NB: the pyfunc prefixes its schema violations with this (model_code/pyfunc.py).
REJECTED_PREFIX = "Invalid applicant data:"

Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class ScoredRow(BaseModel):
    """One record of the scoring server's answer (``model_code.schema.OUTPUT_COLUMNS``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    prediction: Literal["APPROVED", "REJECTED"]
    approval_probability: Probability
    rejection_probability: Probability
    risk_score: Probability
    confidence: Probability
    model_run_id: str = Field(pattern=RUN_ID_PATTERN)


class _Invocations(BaseModel):
    predictions: list[ScoredRow]


class _UpstreamError(BaseModel):
    message: str


class ScoringClient:
    """Calls the scoring server through the app's pooled ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def ping(self) -> None:
        """Return when the scoring server answers ``/ping`` with 200, raise ModelUnavailable otherwise."""
        response = await self._send("GET", PING)
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

    async def _send(self, method: str, endpoint: str, json: object = None) -> httpx.Response:
        start = time.perf_counter()
        try:
            return await self._http.request(method, endpoint, json=json)
        except httpx.TimeoutException as exc:
            UPSTREAM_ERRORS.labels("timeout").inc()
            logger.warning("scoring server %s: %s", endpoint, type(exc).__name__)
            raise ModelTimeout("The scoring server did not answer in time.") from exc
        except httpx.TransportError as exc:
            UPSTREAM_ERRORS.labels("connect").inc()
            logger.warning("scoring server %s: %s", endpoint, type(exc).__name__)
            raise ModelUnavailable("The scoring server is unreachable.") from exc
        finally:
            UPSTREAM_REQUEST_DURATION.labels(endpoint).observe(time.perf_counter() - start)


def _rejected_fields(response: httpx.Response) -> list[FieldError] | None:
    """The fields and rules named by the pyfunc's "Invalid applicant data: ..." message, else None.

    The message reads ``age must be an integer between 18 and 100 (row 0); income ...``. Only
    names found in the schema are kept, and each rule is the schema's own text, so nothing the
    upstream wrote is passed on verbatim.
    """
    try:
        message = _UpstreamError.model_validate_json(response.content).message
    except ValidationError:
        return None
    if not message.startswith(REJECTED_PREFIX):
        return None
    errors: list[FieldError] = []
    for part in message.removeprefix(REJECTED_PREFIX).split(";"):
        name, _, rest = part.strip().partition(" ")
        feature = FEATURES_BY_NAME.get(name)
        if feature is None:
            continue
        rule = "is required" if rest.startswith("is required") else feature.rule()
        errors.append(FieldError(field=name, rule=rule))
    return errors
