"""Decision records, read back: one by application id, pages in time order, and the chain verified.

Reading records is its own permission (``credit:decisions:read``), apart from predicting: records
hold applicants' personal data. Bad ids and parameters get 422 naming the parameter and its rule,
never repeating the value (nor does a problem's ``instance``, which names the route's template). A
record changed in the database so that it no longer matches the record schema is answered 409,
named by its ``seq`` and never its values: ``/decisions/verify`` is the auditor's tool for it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, cast
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from facade.api.openapi import problem_responses
from facade.api.validation import register_parameter_rules
from facade.core.problems import Problem
from facade.errors import RecordInvalid, RecordNotFound, RecordsOff, RecordsUnreadable
from facade.records.record import DecisionRecord
from facade.records.store import DecisionStore, Filters, StoredRecordInvalid
from facade.schemas import (
    BrokenLinkPublic,
    ChainVerificationPublic,
    Decision,
    DecisionPagePublic,
    DecisionRecordPublic,
    ReasonRecorded,
)
from facade.security import SCOPE_DECISIONS_READ, require_scope
from facade.service import PredictionService

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/decisions", tags=["decisions"], dependencies=[Depends(require_scope(SCOPE_DECISIONS_READ))]
)

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# NB: a page or one record is a few indexed reads; past this the database is in trouble.
READ_TIMEOUT_SECONDS = 10.0
# NB: opaque to clients (they pass back what they were given); every string of this shape is a
# valid cursor, so the published pattern is the whole rule.
CURSOR_PATTERN = r"^c[0-7][0-9a-f]{15}$"  # a seq below 2**63 (a BIGINT)

_AT = (
    "must be an ISO 8601 date-time with a UTC offset, between 0001-01-01 and 9999-12-31 in UTC, "
    "e.g. 2026-01-01T00:00:00Z"
)
register_parameter_rules(
    application_id="must be a UUID, as an answer's application_id",
    since=_AT,
    until=_AT,
    prediction="must be APPROVED or REJECTED",
    model_version="must be a registered model version: 1 to 10 digits",
    cursor="must be a next_cursor this API returned",
    limit=f"must be an integer between 1 and {MAX_PAGE_SIZE}",
)


def encode_cursor(seq: int) -> str:
    """The cursor of the page after record ``seq``."""
    return f"c{seq:016x}"


def decode_cursor(cursor: str) -> int:
    """The ``seq`` a cursor (already matched against CURSOR_PATTERN) is after."""
    return int(cursor[1:], 16)


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _rfc3339_only(value: object) -> object:
    # NB: pydantic would also read a bare number as Unix seconds; the published format is date-time.
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("not an RFC 3339 date-time")
    return value


def _in_utc(value: datetime) -> datetime:
    # NB: converted here, where a bad instant is the client's 422: 9999-12-31T23:59:59-23:59 is in the
    # year 10000 in UTC, which no datetime (nor the database) holds.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("outside the years 1 to 9999 in UTC") from None


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only), AfterValidator(_in_utc)]


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Instant | None = Field(default=None, description="Recorded at or after this time.")
    until: Instant | None = Field(default=None, description="Recorded before this time.")


class DecisionsQuery(_Range):
    prediction: Decision | None = Field(default=None, description="Only APPROVED or only REJECTED.")
    model_version: str | None = Field(
        default=None, pattern=r"^[0-9]{1,10}$", description="Only decisions of this registered version."
    )
    cursor: str | None = Field(
        default=None, pattern=CURSOR_PATTERN, description="The previous page's `next_cursor`."
    )
    limit: int = Field(default=PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Records per page.")


async def get_store(request: Request) -> DecisionStore:
    store = cast(PredictionService, request.state.service).records
    if store is None:
        raise RecordsOff("Decision records are off on this server (DECISIONS_DATABASE_URL is not set).")
    return store


StoreDep = Annotated[DecisionStore, Depends(get_store)]

T = TypeVar("T")


# NB: what a database that cannot be read now raises: the driver's errors, the pool's timeout, a
# connection refused or broken, a deadline. Anything else is a bug, the last-resort 500's to log.
_DATABASE_ERRORS = (DBAPIError, DisconnectionError, PoolTimeout, OSError, TimeoutError)


async def _reading(read: Awaitable[T], seconds: float | None = READ_TIMEOUT_SECONDS) -> T:
    try:
        async with asyncio.timeout(seconds):
            return await read
    except _DATABASE_ERRORS as exc:
        # NB: the class only: a driver's message can quote the statement's values.
        logger.warning("decision records: a read failed (%s)", type(exc).__name__)
        raise RecordsUnreadable("The decision records database cannot be read now; retry shortly.") from None


def _invalid(seq: int, *, paging: bool = False) -> RecordInvalid:
    detail = (
        f"The stored decision record seq {seq} does not match the record schema: it was changed in the "
        "database. Run GET /api/v1/decisions/verify to find the first record that does not verify."
    )
    if paging:
        detail += f" The records after it: cursor={encode_cursor(seq)}."
    return RecordInvalid(detail)


def _public(record: DecisionRecord, *, paging: bool = False) -> DecisionRecordPublic:
    """The record as the API publishes it; RecordInvalid (409) if it no longer fits the schema."""
    try:
        return _validated(record)
    except (ValidationError, TypeError, ValueError):
        # NB: neither the error nor the values are kept: they are what was written into the record.
        raise _invalid(record.seq, paging=paging) from None


def _validated(record: DecisionRecord) -> DecisionRecordPublic:
    return DecisionRecordPublic(
        seq=record.seq,
        application_id=record.application_id,
        timestamp=record.timestamp,
        request_id=record.request_id,
        client=record.client,
        model_name=record.model_name,
        model_version=record.model_version,
        model_run_id=record.model_run_id,
        prediction=record.prediction,
        approval_probability=record.approval_probability,
        rejection_probability=record.rejection_probability,
        risk_score=record.risk_score,
        confidence=record.confidence,
        credit_score=record.credit_score,
        decision_threshold=record.decision_threshold,
        reasons=[ReasonRecorded.model_validate(reason) for reason in record.reasons],
        application=dict(record.application),
        schema_version=record.schema_version,
        prev_hash=record.prev_hash,
        record_hash=record.record_hash,
    )


def _responses(
    *statuses: int, not_found: bool = False, invalid: bool = True
) -> dict[int | str, dict[str, Any]]:
    responses = problem_responses(*statuses, 401, 403, 429, 500)
    responses[403]["description"] = "The credentials lack the credit:decisions:read permission."
    responses[422] = {
        "model": Problem,
        "description": "A malformed id or query parameter; `errors` names each (never its value).",
    }
    if invalid:
        responses[409] = {
            "model": Problem,
            "description": (
                "A stored record does not match the record schema (it was changed in the database); "
                "`detail` names its `seq`, never its values. Run `/decisions/verify`."
            ),
        }
    responses[501] = {"model": Problem, "description": "Decision records are off on this server."}
    responses[503] = {
        **problem_responses(503)[503],
        "description": (
            "The decision records database cannot be read now. Retry after the seconds in Retry-After."
        ),
    }
    if not_found:
        responses[404] = {"model": Problem, "description": "No decision record has this application_id."}
    return responses


@router.get("", response_model=DecisionPagePublic, responses=_responses())
async def list_decisions(query: Annotated[DecisionsQuery, Query()], store: StoreDep) -> DecisionPagePublic:
    """Decision records in the order they were recorded (time order, `seq` breaking no ties: times
    never decrease along the chain), filtered, a page at a time; follow `next_cursor` for the next.

    Paging is stable while decisions are being recorded: a new record always comes after every
    record already written, so no page repeats or skips one.
    """
    after = decode_cursor(query.cursor) if query.cursor is not None else 0
    filters = Filters(
        since=query.since, until=query.until, prediction=query.prediction, model_version=query.model_version
    )
    try:
        page = await _reading(store.page(after=after, limit=query.limit, filters=filters))
    except StoredRecordInvalid as exc:
        raise _invalid(exc.seq, paging=True) from None
    records = [_public(record, paging=True) for record in page.records]
    next_cursor = encode_cursor(page.records[-1].seq) if page.more else None
    return DecisionPagePublic(records=records, count=len(records), next_cursor=next_cursor)


@router.get("/verify", response_model=ChainVerificationPublic, responses=_responses(invalid=False))
async def verify_decisions(query: Annotated[_Range, Query()], store: StoreDep) -> ChainVerificationPublic:
    """Recompute the hash chain over the records in [since, until): every record's hash from its
    content, every link to the record before it, and no record missing; name the first that fails."""
    # NB: no deadline but the database's own: verifying a year of records takes a while.
    verification = await _reading(store.verify(query.since, query.until), seconds=None)
    broken = verification.first_broken
    return ChainVerificationPublic(
        ok=verification.ok,
        records=verification.records,
        first_broken=None
        if broken is None
        else BrokenLinkPublic(seq=broken.seq, application_id=broken.application_id, problem=broken.problem),
    )


@router.get("/{application_id}", response_model=DecisionRecordPublic, responses=_responses(not_found=True))
async def get_decision(application_id: UUID, store: StoreDep) -> DecisionRecordPublic:
    """The record of one decision, by the `application_id` its answer carried."""
    try:
        record = await _reading(store.get(application_id))
    except StoredRecordInvalid as exc:
        raise _invalid(exc.seq) from None
    if record is None:
        raise RecordNotFound("No decision record has this application_id.")
    return _public(record)
