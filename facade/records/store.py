"""The decision records store: group-committed appends to one hash chain, reads, verification, purge.

Writes: ``append(drafts)`` queues one group (a request's decisions) for the store's single writer
task, which takes everything pending and writes it in one transaction (group commit), then
answers every caller; while a transaction runs, new groups gather for the next. A micro-batch's
callers are woken together by the batcher and all queue before the writer runs, so its records
share a transaction; a batch request is one group and is never split. Inside the transaction the
chain's head row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), so writers in every process and replica append in one order: each record gets the next
``seq``, the previous record's hash as ``prev_hash``, and a time no earlier than the head's (so
time order and ``seq`` order agree even across replicas whose clocks differ a little).

Failures close the door: a transaction that fails or outlasts DECISION_WRITE_TIMEOUT_SECONDS
fails its callers with ``RecordUnavailable`` (503), and after a few in a row a circuit breaker
refuses appends at once until its pause is over, then lets one append through as a probe; only a
record written closes it (readiness's ping proves the database writable but closes nothing).

The SQL is written once, as functions of a Connection that ``facade.records.database`` runs in a
transaction on either backend. Privacy: the engines hide bound parameters from their error
messages, and failures are logged by exception class only, so no applicant value reaches a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Connection, Row, Select, func, insert, select, text, update

from facade.errors import RecordUnavailable
from facade.records.chain import digest
from facade.records.database import open_database
from facade.records.metrics import RECORD_WRITE_SECONDS, RECORDS_PURGED
from facade.records.metrics import count as count_records
from facade.records.migrate import pending, upgrade
from facade.records.record import DecisionDraft, DecisionRecord, hashed_fields
from facade.records.tables import HEAD_ID, decision_chain, decision_records
from facade.upstream.breaker import CircuitBreaker

logger = logging.getLogger(__name__)
# NB: SQLAlchemy's engine logs statements at INFO (their parameters hidden, see the engines); it
# need not follow the facade's level down.
logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)

# NB: a transaction this large still commits in tens of milliseconds; a batch request (at most
# MAX_BATCH_SIZE rows) is one group and is never split, so a commit may exceed it by one group.
MAX_ROWS_PER_COMMIT = 5000
# NB: consecutive failed transactions that open the circuit, and how long it stays open. Each
# failed transaction already fails every caller in it, so a few are enough to know.
BREAKER_FAILURES = 3
BREAKER_COOL_DOWN_SECONDS = 1.0
# NB: rows read per round trip when verifying (on PostgreSQL the hashing between two reads runs on
# the event loop: a chunk is a few tens of milliseconds of it), and deleted per purge transaction
# (short enough that appends waiting for the head lock wait milliseconds, not seconds).
VERIFY_CHUNK = 500
PURGE_CHUNK = 5000
MIGRATION_TIMEOUT_SECONDS = 120.0

_RECORD_COLUMNS = list(decision_records.c)
_c = decision_records.c
# What ``first_broken.problem`` says, besides missing records.
CONTENT_MISMATCH = "its content does not match its record_hash: the record was changed"
PREV_HASH_MISMATCH = "its prev_hash is not the record_hash of the record before it"


@dataclass(frozen=True)
class BrokenLink:
    """The first place the chain does not hold: the record there (when there is one) and why."""

    seq: int
    application_id: UUID | None
    problem: str


class StoredRecordInvalid(Exception):
    """A stored record that no longer reads back as a record: one of its columns was changed in the
    database (a time, an id or JSON that is not one). Names the record by ``seq``, never its values."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"decision record seq {seq} cannot be read as a record")
        self.seq = seq


@dataclass(frozen=True)
class Unreadable:
    """A row of the records table that does not read back as a record (see StoredRecordInvalid)."""

    seq: int
    application_id: UUID | None


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    first_broken: BrokenLink | None


@dataclass(frozen=True)
class PurgeResult:
    deleted: int
    anchor_seq: int
    anchor_hash: str


@dataclass(frozen=True)
class Page:
    records: list[DecisionRecord]
    more: bool


@dataclass(frozen=True)
class Filters:
    """What a page of records is restricted to (None: no restriction)."""

    since: datetime | None = None
    until: datetime | None = None
    prediction: str | None = None
    model_version: str | None = None


@dataclass(eq=False)
class _Group:
    drafts: Sequence[DecisionDraft]
    future: asyncio.Future[list[DecisionRecord]]


class DecisionStore:
    """Decision records in one SQL database, PostgreSQL or SQLite, through SQLAlchemy."""

    def __init__(
        self,
        url: str,
        *,
        write_timeout: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database = open_database(url, write_timeout)
        self.url = self.database.url
        self.backend = self.url.get_backend_name()
        self.clock = clock
        self.write_timeout = write_timeout
        self.breaker = CircuitBreaker(BREAKER_FAILURES, BREAKER_COOL_DOWN_SECONDS)
        self._pending: deque[_Group] = deque()
        self._arrived = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        # NB: set while nothing is queued or being written: what a graceful close waits for.
        self._idle = asyncio.Event()
        self._idle.set()

    def describe(self) -> str:
        """Where the records are, for logs: the URL without its password."""
        return self.url.render_as_string(hide_password=True)

    # -- lifecycle ---------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        self._make_sqlite_folder()
        async with asyncio.timeout(MIGRATION_TIMEOUT_SECONDS):
            await self.database.write(upgrade)

    async def start(self, *, migrate: bool = True) -> None:
        """Migrate (or check that the schema is current) and start the writer."""
        if migrate:
            await self.migrate()
        else:
            self._make_sqlite_folder()
            if await self.database.read(pending):
                raise RuntimeError(
                    "the decision records database needs migrating: `python -m facade.records migrate`"
                )
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_forever(), name="decision-records-writer")

    async def close(self) -> None:
        """Let queued appends finish (within the write deadline), stop the writer, close connections."""
        if self._writer is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.write_timeout):
                    await self._idle.wait()
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        while self._pending:
            group = self._pending.popleft()
            if not group.future.done():
                group.future.set_exception(RecordUnavailable("The service is shutting down."))
        await self.database.dispose()

    def _make_sqlite_folder(self) -> None:
        if self.backend == "sqlite" and self.url.database not in (None, "", ":memory:"):
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)

    async def ping(self) -> None:
        """Prove, within the write deadline, that a record could be written now, writing none.

        SQLite: the writer's own BEGIN IMMEDIATE takes the write lock (another process holding it, or
        a read-only file, fails it), then rolls back. PostgreSQL: in a transaction of the writer's
        own connections, the chain's head row is locked as an append locks it (a read-only server,
        a standby, or a writer stuck holding the lock fails it within lock_timeout), and the role's
        INSERT privilege on the records table is checked, then it rolls back.

        NB: its success does not close the records circuit: only a record actually written does
        (the circuit lets one append through by itself once its pause is over). A ping succeeding
        while appends fail would otherwise undo the fast 503 at every readiness probe.
        """
        await self.database.try_write(
            partial(_probe_write, lock_timeout_ms=max(1, int(self.write_timeout * 1000))),
            seconds=self.write_timeout,
        )

    # -- writes ------------------------------------------------------------------------------

    async def append(self, drafts: Sequence[DecisionDraft]) -> list[DecisionRecord]:
        """Record ``drafts`` (one request's decisions) in one transaction; RecordUnavailable if not."""
        if not drafts:
            return []
        if self._writer is None:
            raise RecordUnavailable("The decision records store is not running.")
        if not self.breaker.allow():
            count_records("refused", len(drafts))
            raise RecordUnavailable(
                "Decisions cannot be recorded now (the records database is unreachable), so none is "
                "returned; retry shortly.",
                retry_after=self.breaker.retry_after(),
            )
        group = _Group(drafts, asyncio.get_running_loop().create_future())
        self._pending.append(group)
        self._idle.clear()
        self._arrived.set()
        return await group.future

    async def _write_forever(self) -> None:
        while True:
            while not self._pending:
                self._idle.set()
                self._arrived.clear()
                await self._arrived.wait()
            await self._commit(self._take())

    def _take(self) -> list[_Group]:
        """Every pending group, up to MAX_ROWS_PER_COMMIT rows (at least one group; never split)."""
        taken: list[_Group] = []
        rows = 0
        while self._pending and (not taken or rows + len(self._pending[0].drafts) <= MAX_ROWS_PER_COMMIT):
            group = self._pending.popleft()
            taken.append(group)
            rows += len(group.drafts)
        return taken

    async def _commit(self, groups: list[_Group]) -> None:
        drafts = [draft for group in groups for draft in group.drafts]
        start = time.perf_counter()
        try:
            records = await self.database.write(
                partial(_append, drafts=drafts, now=self.clock()), seconds=self.write_timeout
            )
        except Exception as exc:
            RECORD_WRITE_SECONDS.observe(time.perf_counter() - start)
            self.breaker.record_failure()
            count_records("failed", len(drafts))
            # NB: the class only: a driver's message can quote the statement's values.
            logger.warning(
                "decision records: a commit of %d records failed (%s)", len(drafts), type(exc).__name__
            )
            for group in groups:
                if not group.future.done():
                    group.future.set_exception(
                        RecordUnavailable(
                            "The decision could not be recorded, so it is not returned; retry shortly."
                        )
                    )
            return
        RECORD_WRITE_SECONDS.observe(time.perf_counter() - start)
        self.breaker.record_success()
        count_records("written", len(drafts))
        offset = 0
        for group in groups:
            size = len(group.drafts)
            if not group.future.done():
                group.future.set_result(records[offset : offset + size])
            offset += size

    # -- reads -------------------------------------------------------------------------------

    async def get(self, application_id: UUID) -> DecisionRecord | None:
        return await self.database.read(partial(_get, application_id=application_id))

    async def page(self, *, after: int = 0, limit: int = 100, filters: Filters | None = None) -> Page:
        """Records after seq ``after`` in chain order (which is time order), filtered, at most ``limit``."""
        return await self.database.read(
            partial(_page, after=after, limit=limit, filters=filters or Filters())
        )

    async def count(self) -> int:
        return await self.database.read(_count)

    async def verify(self, since: datetime | None = None, until: datetime | None = None) -> Verification:
        """Recompute the chain over the records in [since, until): each hash, each link, no gap.

        The first record's link is checked against the record before it (or the anchor), and the
        last record's against the one after it (or the chain's head), so a record deleted at either
        end of the range is caught too. Runs in one snapshot of the database.
        """
        return await self.database.read(partial(_verify, since=since, until=until), snapshot=True)

    # -- retention ---------------------------------------------------------------------------

    async def purge(self, retention_days: int, now: datetime | None = None) -> PurgeResult:
        """Delete the records older than ``retention_days``, oldest first, moving the chain's anchor.

        Time order is chain order, so what is deleted is always the chain's oldest stretch; the
        anchor then names the first record kept and the hash its ``prev_hash`` must still equal, so
        the rest verifies as before. Each chunk is logged (seq range and new anchor) and counted.
        """
        cutoff = (now or self.clock()) - timedelta(days=retention_days)
        deleted = 0
        while True:
            chunk = await self.database.write(partial(_purge_chunk, cutoff=cutoff))
            if chunk.deleted == 0:
                return PurgeResult(deleted, chunk.anchor_seq, chunk.anchor_hash)
            deleted += chunk.deleted
            RECORDS_PURGED.inc(chunk.deleted)
            logger.info(
                "decision records: purged %d records older than %d days (up to seq %d); the chain is "
                "anchored at seq %d, prev_hash %s",
                chunk.deleted,
                retention_days,
                chunk.anchor_seq - 1,
                chunk.anchor_seq,
                chunk.anchor_hash,
                extra={
                    "purged": chunk.deleted,
                    "anchor_seq": chunk.anchor_seq,
                    "anchor_hash": chunk.anchor_hash,
                },
            )

    async def purge_forever(self, retention_days: int, interval: float) -> None:
        """Purge now, then every ``interval`` seconds; a failed purge is logged and tried again later."""
        while True:
            try:
                await self.purge(retention_days)
            except Exception as exc:
                logger.warning("decision records: the retention purge failed (%s)", type(exc).__name__)
            await asyncio.sleep(interval)


# -- the SQL, as functions of a connection inside a transaction ------------------------------


class RecordsNotInsertable(Exception):
    """The database role may not INSERT into the records table: no decision could be recorded."""


def _probe_write(connection: Connection, *, lock_timeout_ms: int) -> None:
    if connection.dialect.name != "postgresql":
        return  # NB: SQLite: the transaction's BEGIN IMMEDIATE took the write lock, which is the proof
    connection.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
    insertable = connection.execute(
        select(func.has_table_privilege(decision_records.name, "INSERT"))
        .select_from(decision_chain)
        .where(decision_chain.c.id == HEAD_ID)
        .with_for_update()
    ).scalar_one()
    if not insertable:
        raise RecordsNotInsertable("the role may not insert decision records")


def _head(connection: Connection, *, lock: bool = False) -> Row[Any]:
    query = select(decision_chain).where(decision_chain.c.id == HEAD_ID)
    return connection.execute(query.with_for_update() if lock else query).one()


def _append(
    connection: Connection, *, drafts: Sequence[DecisionDraft], now: datetime
) -> list[DecisionRecord]:
    head = _head(connection, lock=True)
    at = max(now, head.last_at) if head.last_at is not None else now
    seq, prev_hash = int(head.last_seq), str(head.last_hash)
    records, rows = [], []
    for draft in drafts:
        seq += 1
        fields = hashed_fields(draft, seq, at, prev_hash)
        record_hash = digest(fields)
        records.append(_stamp(draft, seq, at, prev_hash, record_hash))
        # NB: the row is the hashed fields with the column types' values: one dict per record.
        del fields["timestamp"]
        fields.update(application_id=draft.application_id, recorded_at=at, record_hash=record_hash)
        rows.append(fields)
        prev_hash = record_hash
    connection.execute(insert(decision_records), rows)
    connection.execute(
        update(decision_chain)
        .where(decision_chain.c.id == HEAD_ID)
        .values(last_seq=seq, last_hash=prev_hash, last_at=at)
    )
    return records


def _get(connection: Connection, *, application_id: UUID) -> DecisionRecord | None:
    found = _readable(
        _read_records(
            connection, select(*_RECORD_COLUMNS).where(decision_records.c.application_id == application_id)
        )
    )
    return found[0] if found else None


def _count(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(decision_records)).scalar_one())


def _page(connection: Connection, *, after: int, limit: int, filters: Filters) -> Page:
    query = select(*_RECORD_COLUMNS).where(_c.seq > after)
    if filters.since is not None:
        # NB: times never decrease along the chain, so a time bound is a seq bound, found on the time
        # index; the page then walks the primary key from there.
        first = connection.execute(
            select(_c.seq).where(_c.recorded_at >= filters.since).order_by(_c.recorded_at, _c.seq).limit(1)
        ).scalar_one_or_none()
        if first is None:
            return Page(records=[], more=False)
        query = query.where(_c.seq >= first, _c.recorded_at >= filters.since)
    if filters.until is not None:
        query = query.where(_c.recorded_at < filters.until)
    if filters.prediction is not None:
        query = query.where(decision_records.c.prediction == filters.prediction)
    if filters.model_version is not None:
        query = query.where(decision_records.c.model_version == filters.model_version)
    records = _read_records(connection, query.order_by(_c.seq).limit(limit + 1))
    return Page(records=_readable(records[:limit]), more=len(records) > limit)


def _purge_chunk(connection: Connection, *, cutoff: datetime) -> PurgeResult:
    """Delete up to PURGE_CHUNK of the oldest records before ``cutoff`` and move the anchor past them."""
    head = _head(connection, lock=True)
    oldest = select(_c.seq).where(_c.recorded_at < cutoff).order_by(_c.seq).limit(PURGE_CHUNK).subquery()
    last = connection.execute(select(func.max(oldest.c.seq))).scalar_one()
    if last is None:
        return PurgeResult(0, int(head.anchor_seq), str(head.anchor_hash))
    last_hash = str(
        connection.execute(select(decision_records.c.record_hash).where(_c.seq == last)).scalar_one()
    )
    deleted = connection.execute(decision_records.delete().where(_c.seq <= last)).rowcount
    connection.execute(
        update(decision_chain)
        .where(decision_chain.c.id == HEAD_ID)
        .values(anchor_seq=last + 1, anchor_hash=last_hash)
    )
    return PurgeResult(int(deleted), int(last) + 1, last_hash)


def _verify(connection: Connection, *, since: datetime | None, until: datetime | None) -> Verification:
    head = _head(connection)
    anchor_seq = int(head.anchor_seq)
    bounds: Select[Any] = select(func.min(_c.seq), func.max(_c.seq))
    if since is not None:
        bounds = bounds.where(_c.recorded_at >= since)
    if until is not None:
        bounds = bounds.where(_c.recorded_at < until)
    first, last = connection.execute(bounds).one()
    if first is None:
        if since is None and until is None and int(head.last_seq) >= anchor_seq:
            return _broken(0, anchor_seq, None, f"records {anchor_seq} to {head.last_seq} are missing")
        return Verification(ok=True, records=0, first_broken=None)

    expected_seq = int(first)
    if expected_seq == anchor_seq:
        expected_prev = str(head.anchor_hash)
    else:
        before = connection.execute(
            select(decision_records.c.record_hash).where(_c.seq == expected_seq - 1)
        ).scalar_one_or_none()
        if before is None:
            first_id = connection.execute(
                select(decision_records.c.application_id).where(_c.seq == expected_seq)
            ).scalar_one()
            prior = connection.execute(select(func.max(_c.seq)).where(_c.seq < expected_seq)).scalar_one()
            gap_from = int(prior) + 1 if prior is not None else anchor_seq
            problem = (
                _missing_before(gap_from, expected_seq)
                if expected_seq > gap_from
                else f"it precedes the chain's anchor (seq {anchor_seq})"
            )
            return _broken(0, expected_seq, first_id, problem)
        expected_prev = str(before)

    checked = 0
    after = expected_seq - 1
    while after < int(last):
        chunk = _read_records(
            connection,
            select(*_RECORD_COLUMNS)
            .where(_c.seq > after, _c.seq <= last)
            .order_by(_c.seq)
            .limit(VERIFY_CHUNK),
        )
        for record in chunk:
            if isinstance(record, Unreadable):
                if record.seq != expected_seq:
                    return _broken(
                        checked, record.seq, record.application_id, _missing_before(expected_seq, record.seq)
                    )
                return _broken(checked, record.seq, record.application_id, CONTENT_MISMATCH)
            if record.seq != expected_seq:
                return _broken(
                    checked, record.seq, record.application_id, _missing_before(expected_seq, record.seq)
                )
            if record.prev_hash != expected_prev:
                return _broken(checked, record.seq, record.application_id, PREV_HASH_MISMATCH)
            if not _hash_holds(record):
                return _broken(checked, record.seq, record.application_id, CONTENT_MISMATCH)
            checked += 1
            expected_seq += 1
            expected_prev = record.record_hash
        after = chunk[-1].seq

    # NB: the link out of the range: the next record, or, when there is none, the chain's head.
    successor = connection.execute(
        select(_c.seq, decision_records.c.application_id, decision_records.c.prev_hash)
        .where(_c.seq > last)
        .order_by(_c.seq)
        .limit(1)
    ).first()
    if successor is None:
        if int(head.last_seq) != expected_seq - 1:
            missing = (
                f"records {expected_seq} to {head.last_seq} are missing (the chain's head names the last)"
            )
            return _broken(checked, expected_seq, None, missing)
        if str(head.last_hash) != expected_prev:
            return _broken(
                checked, expected_seq - 1, None, "the chain's head does not name the last record's hash"
            )
    elif int(successor.seq) != expected_seq:
        return _broken(
            checked,
            int(successor.seq),
            successor.application_id,
            _missing_before(expected_seq, int(successor.seq)),
        )
    elif str(successor.prev_hash) != expected_prev:
        return _broken(checked, int(successor.seq), successor.application_id, PREV_HASH_MISMATCH)
    return Verification(ok=True, records=checked, first_broken=None)


def _hash_holds(record: DecisionRecord) -> bool:
    try:
        fields = hashed_fields(record, record.seq, record.timestamp, record.prev_hash)
        return digest(fields) == record.record_hash
    except (TypeError, ValueError):
        return False  # NB: its reasons or application are no longer JSON objects: it was changed


def _missing_before(expected: int, found: int) -> str:
    if found == expected + 1:
        return f"record {expected}, the one before it, is missing"
    return f"records {expected} to {found - 1}, before it, are missing"


def _broken(checked: int, seq: int, application_id: UUID | None, problem: str) -> Verification:
    return Verification(ok=False, records=checked, first_broken=BrokenLink(seq, application_id, problem))


def _stamp(draft: DecisionDraft, seq: int, at: datetime, prev_hash: str, record_hash: str) -> DecisionRecord:
    return DecisionRecord(
        seq=seq,
        application_id=draft.application_id,
        timestamp=at,
        request_id=draft.request_id,
        client=draft.client,
        model_name=draft.model_name,
        model_version=draft.model_version,
        model_run_id=draft.model_run_id,
        prediction=draft.prediction,
        approval_probability=draft.approval_probability,
        rejection_probability=draft.rejection_probability,
        risk_score=draft.risk_score,
        confidence=draft.confidence,
        credit_score=draft.credit_score,
        decision_threshold=draft.decision_threshold,
        reasons=draft.reasons,
        application=draft.application,
        schema_version=draft.schema_version,
        prev_hash=prev_hash,
        record_hash=record_hash,
    )


def _read_records(connection: Connection, query: Select[Any]) -> list[DecisionRecord | Unreadable]:
    """The records ``query`` selects, in its order; a row whose columns no longer decode is Unreadable."""
    try:
        return [_record(row) for row in connection.execute(query).all()]
    except (ValueError, TypeError):
        pass
    # NB: only when a record was changed in the database (SQLite keeps any text in any column): read
    # the rows one at a time to find which; the exception's message is never kept (it may quote them).
    found: list[DecisionRecord | Unreadable] = []
    for seq in connection.execute(query.with_only_columns(_c.seq)).scalars().all():
        one = select(*_RECORD_COLUMNS).where(_c.seq == seq)
        try:
            found.append(_record(connection.execute(one).one()))
        except (ValueError, TypeError):
            try:
                application_id = connection.execute(one.with_only_columns(_c.application_id)).scalar_one()
            except (ValueError, TypeError):
                application_id = None
            found.append(Unreadable(int(seq), application_id))
    return found


def _readable(records: list[DecisionRecord | Unreadable]) -> list[DecisionRecord]:
    """``records``, or StoredRecordInvalid naming the first that cannot be read."""
    for record in records:
        if isinstance(record, Unreadable):
            raise StoredRecordInvalid(record.seq)
    return cast(list[DecisionRecord], records)


def _record(row: Row[Any]) -> DecisionRecord:
    values = row._mapping
    return DecisionRecord(
        seq=int(values["seq"]),
        application_id=values["application_id"],
        timestamp=values["recorded_at"],
        request_id=values["request_id"],
        client=values["client"],
        model_name=values["model_name"],
        model_version=values["model_version"],
        model_run_id=values["model_run_id"],
        prediction=values["prediction"],
        approval_probability=values["approval_probability"],
        rejection_probability=values["rejection_probability"],
        risk_score=values["risk_score"],
        confidence=values["confidence"],
        credit_score=values["credit_score"],
        decision_threshold=values["decision_threshold"],
        reasons=values["reasons"],
        application=values["application"],
        schema_version=values["schema_version"],
        prev_hash=values["prev_hash"],
        record_hash=values["record_hash"],
    )
