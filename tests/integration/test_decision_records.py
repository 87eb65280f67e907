"""Decision records with the real facade process and a real PostgreSQL 15 (and SQLite): nothing
answered is lost to a SIGKILL, a database outage fails closed and heals without a restart, two
replicas write one chain, and the chain catches edits and deletions in PostgreSQL too.

Every PostgreSQL database here is made by the Compose stack's own init script
(``postgres/initdb/10-decisions.sh``), run against a throwaway server: its own role, its own
database. The scoring server is the stand-in of ``stub_upstream`` (the model is not the subject).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx
import pytest

from facade.records.store import CONTENT_MISMATCH, DecisionStore
from model_code.schema import EXAMPLE_APPLICANTS
from scripts.processes import PROJECT_ROOT
from tests.integration.servers import PG_BIN, Postgres, Stack
from tests.integration.stub_upstream import StubUpstream

pytestmark = pytest.mark.integration

APPROVED = EXAMPLE_APPLICANTS["approved"]
REJECTED = EXAMPLE_APPLICANTS["rejected"]
INIT_SCRIPT = PROJECT_ROOT / "postgres" / "initdb" / "10-decisions.sh"
CLIENTS = 8
_names = count(1)


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    if not Postgres.available():
        pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql; CI's .ci/run does)")
    server = Postgres.create()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def decisions_database(pg: Postgres, password: str | None = None) -> str:
    """A database and role of its own, made by the Compose init script; its URL as the API gets it."""
    name = f"decisions_{next(_names)}"
    password = password or f"pw-{name}"
    env = {
        "PATH": f"{PG_BIN}{os.pathsep}{os.environ['PATH']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postgres",
        "DECISIONS_DB_USER": name,
        "DECISIONS_DB_PASSWORD": password,
        "DECISIONS_DB_NAME": name,
    }
    subprocess.run(["sh", str(INIT_SCRIPT)], env=env, check=True, capture_output=True, timeout=60)
    return f"postgresql://{name}:{quote(password, safe='')}@127.0.0.1:{pg.port}/{name}"


def stored_ids(url: str) -> set[str]:
    """Every application_id in the records table, read with sqlite3 or psycopg2 (not the facade's code)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as lite:
            rows = lite.execute("SELECT application_id FROM decision_records").fetchall()
    else:
        import psycopg2

        connection = psycopg2.connect(url)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT application_id FROM decision_records")
                rows = cursor.fetchall()
        finally:
            connection.close()
    return {str(UUID(str(row[0]))) for row in rows}


def sql(url: str, statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


def verify(url: str) -> Any:
    async def run() -> Any:
        store = DecisionStore(url)
        try:
            return await store.verify()
        finally:
            await store.close()

    return asyncio.run(run())


@pytest.fixture
def stub() -> Iterator[StubUpstream]:
    server = StubUpstream(delay=0.002).start()
    try:
        yield server
    finally:
        server.stop()


def facade_stack(stub: StubUpstream, root: Path) -> Stack:
    """A Stack whose tracking and scoring servers are both the stand-in (no mlflow process started)."""
    return Stack(root, backend_store_uri="unused", mlflow_port=stub.port, scoring_port=stub.port)


async def burst(urls: list[str], stop: Callable[[list[str]], bool], limit: float) -> list[str]:
    """CLIENTS clients posting predictions back to back, spread over ``urls``, until ``stop`` holds (it
    is asked after every answer) or a request fails; the application_ids answered 200."""
    answered: list[str] = []
    done = asyncio.Event()

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=urls[n % len(urls)], timeout=10.0) as http:
            while not done.is_set():
                try:
                    response = await http.post("/api/v1/predict", json=APPROVED if n % 2 else REJECTED)
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    answered.append(response.json()["application_id"])
                if stop(answered):
                    done.set()

    await asyncio.wait_for(asyncio.gather(*(client(n) for n in range(CLIENTS))), timeout=limit)
    return answered


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_sigkill_during_a_burst_loses_no_decision_that_was_answered(
    backend: str,
    request: pytest.FixtureRequest,
    stub: StubUpstream,
    tmp_path: Path,
    figure: Callable[[str, str], None],
) -> None:
    if backend == "postgresql":
        url = decisions_database(request.getfixturevalue("pg"))
    else:
        url = f"sqlite:///{tmp_path / 'decisions.db'}"
    stack = facade_stack(stub, tmp_path)
    killed = False
    try:
        stack.start_facade(DECISIONS_DATABASE_URL=url)
        assert stack.facade is not None
        pid = stack.facade.pid

        def kill_after_some(answered: list[str]) -> bool:
            nonlocal killed
            if len(answered) >= 300 and not killed:
                killed = True
                os.killpg(pid, signal.SIGKILL)  # NB: mid-burst: 8 requests are in flight
            return False  # NB: the clients stop when their connections die

        answered = asyncio.run(burst([stack.api_url], kill_after_some, limit=120))
    finally:
        stack.stop()

    assert killed
    found = stored_ids(url)
    lost = set(answered) - found
    figure(
        f"SIGKILL of the facade mid-burst ({CLIENTS} clients, {backend})",
        f"{len(answered)} answered 200, {len(set(answered) & found)} of them found, {len(found)} recorded",
    )
    assert len(answered) >= 300
    assert not lost
    verification = verify(url)
    assert verification.ok, verification.first_broken
    assert verification.records == len(found)


def test_a_database_outage_fails_closed_quickly_and_heals_without_a_restart(
    pg: Postgres, stub: StubUpstream, tmp_path: Path, figure: Callable[[str, str], None]
) -> None:
    url = decisions_database(pg)
    stack = facade_stack(stub, tmp_path)
    try:
        stack.start_facade(DECISIONS_DATABASE_URL=url, DECISION_WRITE_TIMEOUT_SECONDS="1")
        assert stack.facade is not None
        pid = stack.facade.pid
        with httpx.Client(base_url=stack.api_url, timeout=10.0) as http:
            answered = []
            for _ in range(10):
                start = time.perf_counter()
                assert http.post("/api/v1/predict", json=APPROVED).status_code == 200
                answered.append(time.perf_counter() - start)

            pg.halt()
            try:
                latencies = []
                for _ in range(20):
                    start = time.perf_counter()
                    response = http.post("/api/v1/predict", json=APPROVED)
                    latencies.append(time.perf_counter() - start)
                    assert response.status_code == 503
                    assert response.headers["content-type"] == "application/problem+json"
                    assert response.json()["type"].endswith("/decision-record-unavailable")
                    assert int(response.headers["retry-after"]) >= 1
                    assert "application_id" not in response.text
                assert http.get("/api/v1/health/ready").status_code == 503
            finally:
                pg.start()

            deadline = time.monotonic() + 30
            healed = None
            while time.monotonic() < deadline:
                response = http.post("/api/v1/predict", json=REJECTED)
                if response.status_code == 200:
                    healed = response.json()["application_id"]
                    break
                time.sleep(0.2)
            assert healed is not None, "no 200 within 30 s of the database's return"
            assert stack.facade.running()
            assert stack.facade.pid == pid  # NB: the same process, never restarted
            assert http.get(f"/api/v1/decisions/{healed}").status_code == 200
            assert http.get("/api/v1/health/ready").status_code == 200
    finally:
        stack.stop()

    figure(
        "decision records database down (PostgreSQL stopped)",
        f"20 predictions: all 503 fail-closed, median {statistics.median(latencies) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.0f} ms (write deadline 1 s; a 200 before took "
        f"{statistics.median(answered) * 1000:.1f} ms through the stand-in); 200 again without a restart",
    )
    assert max(latencies) < 2.0
    assert statistics.median(latencies) < 0.5  # NB: the circuit opens after three failed commits
    assert verify(url).ok


def test_two_replicas_on_one_database_write_one_chain(
    pg: Postgres, stub: StubUpstream, tmp_path: Path
) -> None:
    url = decisions_database(pg)
    first, second = facade_stack(stub, tmp_path / "a"), facade_stack(stub, tmp_path / "b")
    try:
        first.start_facade(DECISIONS_DATABASE_URL=url)
        second.start_facade(DECISIONS_DATABASE_URL=url)
        answered = asyncio.run(burst([first.api_url, second.api_url], lambda a: len(a) >= 400, limit=120))
    finally:
        first.stop()
        second.stop()

    assert len(answered) >= 400
    assert set(answered) <= stored_ids(url)
    verification = verify(url)
    assert verification.ok, verification.first_broken
    assert verification.records == len(stored_ids(url))


def test_the_chain_and_the_purge_on_postgresql(pg: Postgres) -> None:
    url = decisions_database(pg)
    from tests.facade.test_records_store import draft

    async def scenario() -> tuple[Any, ...]:
        now = [datetime(2026, 1, 1, tzinfo=UTC)]
        store = DecisionStore(url, clock=lambda: now[0])
        await store.start()
        try:
            old = await store.append([draft(n) for n in range(5)])
            now[0] += timedelta(days=400)
            kept = await store.append([draft(n) for n in range(5, 10)])
            intact = await store.verify()
            sql(url, "UPDATE decision_records SET credit_score = 850 WHERE seq = 7")
            edited = await store.verify()
            sql(url, f"UPDATE decision_records SET credit_score = {kept[1].credit_score} WHERE seq = 7")
            sql(url, "DELETE FROM decision_records WHERE seq = 3")
            deleted = await store.verify()
            purged = await store.purge(365)
            after_purge = await store.verify()
            return old, kept, intact, edited, deleted, purged, after_purge
        finally:
            await store.close()

    old, kept, intact, edited, deleted, purged, after_purge = asyncio.run(scenario())

    assert (intact.ok, intact.records) == (True, 10)
    assert (edited.first_broken.seq, edited.first_broken.problem) == (7, CONTENT_MISMATCH)
    assert edited.first_broken.application_id == kept[1].application_id
    assert deleted.first_broken.seq == 4
    assert deleted.first_broken.problem == "record 3, the one before it, is missing"
    assert (purged.deleted, purged.anchor_seq, purged.anchor_hash) == (4, 6, old[-1].record_hash)
    assert (after_purge.ok, after_purge.records) == (True, 5)


def test_the_ping_fails_on_postgresql_that_reads_but_cannot_record(pg: Postgres) -> None:
    """Readiness's ping: a role without INSERT on the records, or a read-only database, is not ready."""
    url = decisions_database(pg)
    role = url.split("//")[1].split(":")[0]

    async def ping() -> str:
        store = DecisionStore(url, write_timeout=1.0)
        await store.start()
        try:
            await store.ping()
            return "ok"
        except Exception as exc:
            return type(exc).__name__
        finally:
            await store.close()

    assert asyncio.run(ping()) == "ok"
    sql(url, f'REVOKE INSERT ON decision_records FROM "{role}"')
    assert asyncio.run(ping()) == "RecordsNotInsertable"
    sql(url, f'GRANT INSERT ON decision_records TO "{role}"')
    assert asyncio.run(ping()) == "ok"
    superuser = pg.url(role)
    sql(superuser, f'ALTER ROLE "{role}" SET default_transaction_read_only = on')  # NB: as on a standby
    try:
        assert asyncio.run(ping()) == "DBAPIError"  # NB: cannot execute SELECT FOR UPDATE read-only
        assert stored_ids(url) == set()  # NB: and still readable
    finally:
        sql(superuser, f'ALTER ROLE "{role}" RESET default_transaction_read_only')
    assert asyncio.run(ping()) == "ok"


def test_readers_holding_every_read_connection_cannot_stop_decisions(pg: Postgres) -> None:
    """Ten long snapshot reads (ten /decisions/verify calls over a long chain), and a decision recorded."""
    from sqlalchemy import Connection, text

    from tests.facade.test_records_store import draft

    url = decisions_database(pg)

    def long_read(connection: Connection) -> None:
        connection.execute(text("SELECT pg_sleep(3)"))

    async def scenario() -> tuple[int, float, int]:
        store = DecisionStore(url, write_timeout=1.0)
        await store.start()
        try:
            readers = [asyncio.create_task(store.database.read(long_read, snapshot=True)) for _ in range(10)]
            await asyncio.sleep(0.5)  # NB: every one of them holds a connection now
            start = time.perf_counter()
            (record,) = await store.append([draft(0)])
            took = time.perf_counter() - start
            done = sum(
                1 for result in await asyncio.gather(*readers, return_exceptions=True) if result is None
            )
            return record.seq, took, done
        finally:
            await store.close()

    seq, took, readers_done = asyncio.run(scenario())

    assert seq == 1
    assert took < 1.0  # NB: within the write deadline, not after the readers
    assert readers_done == 10


def test_the_init_script_makes_a_role_whose_password_logs_in_whatever_it_holds(pg: Postgres) -> None:
    """The password reaches psql through its environment (\\getenv), quotes and all."""
    url = decisions_database(pg, password="pw with 'quotes\" and ; -- $HOME")

    async def ping() -> None:
        store = DecisionStore(url)
        await store.start()
        try:
            await store.ping()
        finally:
            await store.close()

    asyncio.run(ping())
    assert stored_ids(url) == set()


def test_the_first_read_after_a_database_restart_succeeds(pg: Postgres) -> None:
    """The read routes' connections (apart from the writer's) are checked before use: an auditor's
    first read after PostgreSQL restarted is answered, not failed on a connection the restart closed."""
    url = decisions_database(pg)

    async def scenario() -> tuple[int, int]:
        store = DecisionStore(url)
        await store.start()
        try:
            before = await store.count()
            pg.halt()
            pg.start()
            return before, await store.count()
        finally:
            await store.close()

    assert asyncio.run(scenario()) == (0, 0)
