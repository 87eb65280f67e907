"""Where the decision records' SQL runs: one function per transaction, on PostgreSQL or SQLite.

The store writes its SQL once, as plain functions of a SQLAlchemy ``Connection``; a ``Database``
runs such a function inside a transaction and awaits it:

- PostgreSQL: SQLAlchemy's asyncio engine on asyncpg, the function run with ``run_sync`` on the
  event loop (each statement a non-blocking round trip);
- SQLite: the standard library's driver in the store's own threads, the whole transaction one
  hand-off. NB: measured on the project's 2-core machine, aiosqlite costs a thread hand-off per
  statement (about 1 ms each under load, five or six per append, all of it added to every
  request's latency); one hand-off per transaction is what keeps records cheap.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

T = TypeVar("T")
Work = Callable[[Connection], T]

# NB: a backstop for reads and purges on PostgreSQL; appends have their own, shorter deadline.
COMMAND_TIMEOUT_SECONDS = 60.0
SWITCH_INTERVAL_SECONDS = 0.0005


def database_url(url: str) -> URL:
    """The URL with the store's driver: asyncpg for PostgreSQL, the standard library's for SQLite."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError("decision records need a sqlite:// or postgresql:// database URL")


class Database:
    """Runs a function of a Connection in one transaction, for writing or for reading."""

    url: URL

    async def write(self, work: Work[T], *, seconds: float | None = None) -> T:
        """``seconds``: the deadline of the whole transaction; TimeoutError past it.

        NB: the transaction's own outcome is what is reported: a write that fails here was not
        committed, except when PostgreSQL's connection breaks during COMMIT itself (no client of
        any database can know then), which can leave a record whose decision was answered 503.
        """
        raise NotImplementedError

    async def try_write(self, work: Work[T], *, seconds: float) -> T:
        """Run ``work`` in a write transaction as ``write`` would, then roll it back: nothing is written."""
        raise NotImplementedError

    async def read(self, work: Work[T], *, snapshot: bool = False) -> T:
        """``snapshot``: every statement of ``work`` sees the same committed state."""
        raise NotImplementedError

    async def dispose(self) -> None:
        raise NotImplementedError


def open_database(url: str, timeout: float) -> Database:
    parsed = database_url(url)
    return (
        SQLiteDatabase(parsed, timeout)
        if parsed.get_backend_name() == "sqlite"
        else PostgresDatabase(parsed, timeout)
    )


class PostgresDatabase(Database):
    def __init__(self, url: URL, timeout: float) -> None:
        self.url = url
        # NB: writes and reads have engines (pools) of their own: ten /decisions/verify calls each
        # holding a REPEATABLE READ connection for seconds took the whole shared pool, and the
        # writer, waiting pool_timeout for a connection, failed every decision with 503. A reader
        # can no longer stop decisions. The writer's pool: the store's one writer task, a purge
        # chunk and a readiness ping at the same time, at most.
        self.write_engine = _postgres_engine(url, timeout, pool_size=2, max_overflow=1)
        # NB: reads are an auditor's, rare and seconds long: a round trip each to check the
        # connection is nothing, and the first read after a restart of the database is answered
        # (the writer's failures no longer reset the pool the reads use).
        self.engine = _postgres_engine(url, timeout, pool_size=5, max_overflow=5, pre_ping=True)

    async def write(self, work: Work[T], *, seconds: float | None = None) -> T:
        async with asyncio.timeout(seconds), self.write_engine.begin() as connection:
            return await connection.run_sync(work)

    async def try_write(self, work: Work[T], *, seconds: float) -> T:
        async with asyncio.timeout(seconds), self.write_engine.connect() as connection:
            await connection.begin()
            try:
                return await connection.run_sync(work)
            finally:
                await connection.rollback()

    async def read(self, work: Work[T], *, snapshot: bool = False) -> T:
        async with self.engine.connect() as connection:
            if snapshot:
                await connection.execution_options(isolation_level="REPEATABLE READ")
            async with connection.begin():
                return await connection.run_sync(work)

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        await self.engine.dispose()


def _postgres_engine(
    url: URL, timeout: float, *, pool_size: int, max_overflow: int, pre_ping: bool = False
) -> AsyncEngine:
    return create_async_engine(
        url,
        # NB: a driver's error message quotes the statement; with this it never quotes values.
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeout,
        pool_recycle=1800,
        # NB: the writer's engine has no pre-ping: it would cost a round trip on every decision. After
        # a restart of the database its first transaction fails on its dead connection, which makes
        # SQLAlchemy drop the whole pool, and the next one connects afresh.
        pool_pre_ping=pre_ping,
        connect_args={
            "timeout": timeout,
            "command_timeout": COMMAND_TIMEOUT_SECONDS,
            "server_settings": {"application_name": "credit-score-facade"},
        },
    )


class SQLiteDatabase(Database):
    def __init__(self, url: URL, timeout: float) -> None:
        self.url = url
        # NB: one writing thread (the store has one writer), a few reading ones; WAL lets them read
        # while it writes.
        self._write_engine = _sqlite_engine(url, "BEGIN IMMEDIATE", 1, timeout)
        self._read_engine = _sqlite_engine(url, "BEGIN", 3, timeout)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="decision-records-write")
        self._readers = ThreadPoolExecutor(3, thread_name_prefix="decision-records-read")
        # NB: a thread waiting for the GIL gets it only when the event loop's thread lets go, at the
        # latest after the switch interval (5 ms by default): with the loop busy serving requests,
        # each commit waited that long twice (in one run, 32-client throughput with records went
        # from 0.65x of without to 0.82x with 0.5 ms). The process has no other threads competing.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_SECONDS))

    async def write(self, work: Work[T], *, seconds: float | None = None) -> T:
        # NB: no asyncio timeout here: a thread cannot be cancelled, so a caller who stopped waiting
        # could be told "failed" while the thread still commits. The transaction gives up by the
        # deadline itself (busy timeout, and no start once it has passed) and its outcome is waited for.
        deadline = time.monotonic() + seconds if seconds is not None else None
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, partial(_in_transaction, self._write_engine, work, deadline)
        )

    async def try_write(self, work: Work[T], *, seconds: float) -> T:
        deadline = time.monotonic() + seconds
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, partial(_in_transaction, self._write_engine, work, deadline, commit=False)
        )

    async def read(self, work: Work[T], *, snapshot: bool = False) -> T:
        # NB: a SQLite transaction is a snapshot already (BEGIN, then WAL keeps it consistent).
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, partial(_in_transaction, self._read_engine, work)
        )

    async def dispose(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._writer.shutdown)
        await loop.run_in_executor(None, self._readers.shutdown)
        self._write_engine.dispose()
        self._read_engine.dispose()


def _in_transaction(
    engine: Engine, work: Work[T], deadline: float | None = None, *, commit: bool = True
) -> T:
    with engine.connect() as connection:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the deadline passed before the transaction began")
            # NB: on the driver's connection, so that it runs before the "begin" hook's BEGIN IMMEDIATE,
            # the statement that waits for the write lock.
            raw = connection.connection.dbapi_connection
            assert raw is not None
            raw.execute(f"PRAGMA busy_timeout = {max(1, int(remaining * 1000))}")
        with connection.begin() as transaction:
            result = work(connection)
            if not commit:
                transaction.rollback()
            return result


def _sqlite_engine(url: URL, begin: str, pool_size: int, timeout: float) -> Engine:
    engine = create_engine(
        url,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=timeout,
        # NB: timeout is the busy timeout, how long a statement waits for another process's write
        # lock; a pooled connection may serve any of the store's threads.
        connect_args={"timeout": timeout, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _: Any) -> None:
        # NB: the driver's own implicit BEGIN is turned off so that the "begin" hook below decides;
        # WAL lets reads run while the writer commits; synchronous=FULL syncs the log at every
        # commit, so a recorded decision survives a power cut, not only a crash of the process.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # NB: the writer takes the write lock up front (BEGIN IMMEDIATE): a deferred transaction that
        # read the head and then tried to write would fail if another process wrote in between.
        connection.exec_driver_sql(begin)

    return engine
