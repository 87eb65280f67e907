"""The decision records store on a real SQLite database: exact round trips, group commit, the hash
chain catching edits and deletions, retention, migrations, and failing closed while the database
cannot be written. PostgreSQL runs the same store in tests/integration/test_decision_records.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy import create_engine

from facade.core.config import Settings
from facade.errors import RecordUnavailable
from facade.records.chain import GENESIS_HASH
from facade.records.record import DecisionDraft, DecisionRecord
from facade.records.store import CONTENT_MISMATCH, PREV_HASH_MISMATCH, DecisionStore
from facade.records.tables import VERSION_TABLE, metadata
from model_code.schema import SCHEMA_VERSION

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


def draft(n: int = 0, **overrides: Any) -> DecisionDraft:
    """A decision as the service drafts it; ``n`` varies the applicant."""
    values: dict[str, Any] = {
        "application_id": uuid4(),
        "request_id": f"req-{n}",
        "client": "anonymous",
        "model_name": "credit-score",
        "model_version": "3",
        "model_run_id": "0123456789abcdef0123456789abcdef",
        "prediction": "REJECTED",
        "approval_probability": 0.1,
        "rejection_probability": 0.9,
        "risk_score": 0.9,
        "confidence": 0.9,
        "credit_score": 427,
        "decision_threshold": 0.5,
        "reasons": [
            {"code": "DEROGATORY_MARKS", "description": "Number of derogatory marks", "contribution": 1e-07}
        ],
        # NB: as a client may send it: an integral float for an integer field, an int for a number.
        "application": {"age": 36.0, "income": 18000, "derogatory_marks": n, "loan_intent": "VENTURE"},
        "schema_version": SCHEMA_VERSION,
    }
    values.update(overrides)
    return DecisionDraft(**values)


class Store:
    """A DecisionStore on a SQLite file, driven from synchronous tests through one event loop."""

    def __init__(
        self, path: Path, write_timeout: float = 2.0, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        extra = {"clock": clock} if clock is not None else {}
        self.store = DecisionStore(f"sqlite:///{path}", write_timeout=write_timeout, **extra)
        self.run(self.store.start())

    def run(self, work: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await work

        return self.loop.run_until_complete(wrapped())

    def append(self, *drafts: DecisionDraft) -> list[DecisionRecord]:
        return self.run(self.store.append(drafts))

    def sql(self, statement: str, *params: object) -> list[tuple[Any, ...]]:
        """Run SQL with the sqlite3 module, as someone with access to the file would."""
        with sqlite3.connect(self.path) as connection:
            return connection.execute(statement, params).fetchall()

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "records" / "decisions.db")
    yield opened
    opened.close()


def counter(outcome: str) -> float:
    return REGISTRY.get_sample_value("credit_decision_records_total", {"outcome": outcome}) or 0.0


def commits() -> float:
    return REGISTRY.get_sample_value("credit_decision_record_write_seconds_count") or 0.0


def test_records_come_back_exactly_as_written_and_chained(store: Store) -> None:
    first, second = store.append(draft(1), draft(2))
    (third,) = store.append(draft(3, prediction="APPROVED", decision_threshold=None, reasons=[]))

    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.record_hash
    assert third.prev_hash == second.record_hash
    assert first.timestamp == second.timestamp <= third.timestamp
    assert first.timestamp.tzinfo is not None
    for written in (first, second, third):
        read = store.run(store.store.get(written.application_id))
        assert read == written
    read = store.run(store.store.get(first.application_id))
    assert read is not None
    # As entered: 36.0 stays a float, 18000 an integer, the key order is the client's.
    assert read.application == {"age": 36.0, "income": 18000, "derogatory_marks": 1, "loan_intent": "VENTURE"}
    assert isinstance(read.application["age"], float)
    assert isinstance(read.application["income"], int)
    assert list(read.application) == ["age", "income", "derogatory_marks", "loan_intent"]
    assert store.run(store.store.get(uuid4())) is None


def test_the_record_hash_is_sha256_of_the_documented_canonical_json(store: Store) -> None:
    (record,) = store.append(draft(7))
    fields = {
        "seq": 1,
        "application_id": str(record.application_id),
        "timestamp": record.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "request_id": "req-7",
        "client": "anonymous",
        "model_name": "credit-score",
        "model_version": "3",
        "model_run_id": "0123456789abcdef0123456789abcdef",
        "prediction": "REJECTED",
        "approval_probability": 0.1,
        "rejection_probability": 0.9,
        "risk_score": 0.9,
        "confidence": 0.9,
        "credit_score": 427,
        "decision_threshold": 0.5,
        "reasons": [
            {"code": "DEROGATORY_MARKS", "description": "Number of derogatory marks", "contribution": 1e-07}
        ],
        "application": {"age": 36.0, "income": 18000, "derogatory_marks": 7, "loan_intent": "VENTURE"},
        "schema_version": SCHEMA_VERSION,
        "prev_hash": GENESIS_HASH,
    }
    # NB: written out by hand from the README's description, not with the store's own encoder.
    encoded = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert '"age":36.0' in encoded
    assert '"contribution":1e-07' in encoded
    assert record.record_hash == hashlib.sha256(encoded.encode()).hexdigest()


def test_a_batch_is_one_transaction_and_concurrent_appends_share_transactions(store: Store) -> None:
    before = commits()
    store.append(*(draft(n) for n in range(100)))
    assert commits() - before == 1

    async def concurrently(n: int) -> list[list[DecisionRecord]]:
        return await asyncio.gather(*(store.store.append([draft(i)]) for i in range(n)))

    before = commits()
    results = store.run(concurrently(64))

    assert commits() - before < 64 / 4  # NB: in practice 1 or 2: all were queued before the writer ran
    seqs = sorted(records[0].seq for records in results)
    assert seqs == list(range(101, 165))
    verification = store.run(store.store.verify())
    assert (verification.ok, verification.records) == (True, 164)


@pytest.fixture
def ten(store: Store) -> list[DecisionRecord]:
    records = [record for n in range(10) for record in store.append(draft(n))]
    assert store.run(store.store.verify()).ok
    return records


def test_an_edited_record_is_the_first_broken_link(store: Store, ten: list[DecisionRecord]) -> None:
    store.sql(
        "UPDATE decision_records SET application = ? WHERE seq = 4",
        json.dumps({"age": 99.0, "income": 18000, "derogatory_marks": 3, "loan_intent": "VENTURE"}),
    )

    verification = store.run(store.store.verify())

    assert not verification.ok
    assert verification.records == 3
    assert verification.first_broken is not None
    assert verification.first_broken.seq == 4
    assert verification.first_broken.application_id == ten[3].application_id
    assert verification.first_broken.problem == CONTENT_MISMATCH


def test_a_record_rewritten_consistently_breaks_the_link_after_it(
    store: Store, ten: list[DecisionRecord]
) -> None:
    from facade.records.chain import digest
    from facade.records.record import hashed_fields

    forged = store.run(store.store.get(ten[3].application_id))
    assert forged is not None
    changed = draft(
        3, application_id=forged.application_id, request_id=forged.request_id, prediction="APPROVED"
    )
    new_hash = digest(hashed_fields(changed, 4, forged.timestamp, forged.prev_hash))
    store.sql("UPDATE decision_records SET prediction = 'APPROVED', record_hash = ? WHERE seq = 4", new_hash)

    broken = store.run(store.store.verify()).first_broken

    assert broken is not None
    assert (broken.seq, broken.problem) == (5, PREV_HASH_MISMATCH)
    assert broken.application_id == ten[4].application_id


@pytest.mark.parametrize(
    ("deleted", "named", "problem"),
    [
        ([6], 7, "record 6, the one before it, is missing"),
        ([5, 6, 7], 8, "records 5 to 7, before it, are missing"),
        ([1], 2, "record 1, the one before it, is missing"),
        ([10], 10, "records 10 to 10 are missing (the chain's head names the last)"),
    ],
    ids=["middle", "a-stretch", "first", "last"],
)
def test_a_deleted_record_is_caught_and_the_first_broken_link_named(
    store: Store, ten: list[DecisionRecord], deleted: list[int], named: int, problem: str
) -> None:
    for seq in deleted:
        store.sql("DELETE FROM decision_records WHERE seq = ?", seq)

    verification = store.run(store.store.verify())

    assert not verification.ok
    assert verification.first_broken is not None
    assert verification.first_broken.seq == named
    assert verification.first_broken.problem == problem
    assert verification.records == min(deleted) - 1


def test_verify_over_a_time_range_checks_its_links_at_both_ends(store: Store) -> None:
    store.append(*(draft(n) for n in range(3)))
    time.sleep(0.01)
    middle = store.append(*(draft(n) for n in range(3, 6)))
    time.sleep(0.01)
    store.append(*(draft(n) for n in range(6, 9)))
    since, until = middle[0].timestamp, middle[0].timestamp + timedelta(microseconds=1)

    verification = store.run(store.store.verify(since, until))
    assert (verification.ok, verification.records) == (True, 3)

    store.sql("DELETE FROM decision_records WHERE seq = 7")  # just after the range
    verification = store.run(store.store.verify(since, until))
    assert (verification.ok, verification.records) == (False, 3)
    assert verification.first_broken is not None
    assert verification.first_broken.seq == 8
    assert verification.first_broken.problem == "record 7, the one before it, is missing"

    store.sql("DELETE FROM decision_records WHERE seq = 3")  # just before it
    broken = store.run(store.store.verify(since, until)).first_broken
    assert broken is not None
    assert (broken.seq, broken.problem) == (4, "record 3, the one before it, is missing")


def test_purge_deletes_the_oldest_anchors_the_chain_and_is_logged_and_counted(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    old = store.append(*(draft(n) for n in range(4)))
    time.sleep(0.01)
    kept = store.append(*(draft(n) for n in range(4, 7)))
    purged_before = REGISTRY.get_sample_value("credit_decision_records_purged_total") or 0.0
    # NB: "now" is 30 days after the kept records were written, retention 30 days: the old go.
    now = kept[0].timestamp + timedelta(days=30)

    with caplog.at_level(logging.INFO, logger="facade.records.store"):
        result = store.run(store.store.purge(30, now=now))

    assert result.deleted == 4
    assert (result.anchor_seq, result.anchor_hash) == (5, old[-1].record_hash)
    assert (REGISTRY.get_sample_value("credit_decision_records_purged_total") or 0.0) - purged_before == 4
    assert [row[0] for row in store.sql("SELECT seq FROM decision_records ORDER BY seq")] == [5, 6, 7]
    assert any(
        "purged 4 records" in message and "anchored at seq 5" in message for message in caplog.messages
    )
    verification = store.run(store.store.verify())
    assert (verification.ok, verification.records) == (True, 3)
    # And a second purge has nothing to do.
    assert store.run(store.store.purge(30, now=now)).deleted == 0
    # Deleting the new first record is still caught, against the anchor.
    store.sql("DELETE FROM decision_records WHERE seq = 5")
    broken = store.run(store.store.verify()).first_broken
    assert broken is not None
    assert (broken.seq, broken.problem) == (6, "record 5, the one before it, is missing")


def test_purging_everything_leaves_an_empty_verifiable_chain_that_goes_on(store: Store) -> None:
    store.append(*(draft(n) for n in range(3)))

    assert store.run(store.store.purge(1, now=datetime.now(UTC) + timedelta(days=2))).deleted == 3
    assert store.run(store.store.verify()) == store.run(store.store.verify())
    verification = store.run(store.store.verify())
    assert (verification.ok, verification.records) == (True, 0)

    (next_record,) = store.append(draft(9))
    assert next_record.seq == 4
    assert store.run(store.store.verify()).ok


def test_the_background_purge_deletes_what_outlived_the_default_retention(tmp_path: Path) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    opened = Store(tmp_path / "decisions.db", clock=lambda: now[0])
    try:
        opened.append(*(draft(n) for n in range(3)))
        now[0] += timedelta(days=10)
        opened.append(*(draft(n) for n in range(2)))
        now[0] += timedelta(days=760)  # NB: 770 and 760 days old: past and within 761 days

        async def purge_for_a_moment() -> None:
            task = asyncio.create_task(opened.store.purge_forever(761, interval=0.05))
            await asyncio.sleep(0.3)
            task.cancel()

        opened.run(purge_for_a_moment())

        assert [row[0] for row in opened.sql("SELECT seq FROM decision_records ORDER BY seq")] == [4, 5]
        assert opened.run(opened.store.verify()).ok
    finally:
        opened.close()


def test_the_migrations_create_exactly_the_declared_tables(store: Store) -> None:
    engine = create_engine(f"sqlite:///{store.path}")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        differences = compare_metadata(context, metadata)
    engine.dispose()

    assert differences == []


def test_sqlite_runs_in_wal_mode(store: Store) -> None:
    assert store.sql("PRAGMA journal_mode") == [("wal",)]


def test_a_locked_database_fails_closed_quickly_and_recovers(tmp_path: Path) -> None:
    opened = Store(tmp_path / "decisions.db", write_timeout=0.3)
    try:
        opened.append(draft(0))
        blocker = sqlite3.connect(opened.path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        failed_before, refused_before = counter("failed"), counter("refused")

        timings = []
        for n in range(5):
            start = time.perf_counter()
            with pytest.raises(RecordUnavailable) as refused:
                opened.append(draft(n))
            timings.append(time.perf_counter() - start)
            assert refused.value.status == 503
            assert refused.value.headers is not None
            assert int(refused.value.headers["Retry-After"]) >= 1

        assert max(timings) < 1.5  # NB: the deadline is 0.3 s; then the circuit refuses at once
        assert counter("failed") - failed_before == 3
        assert counter("refused") - refused_before == 2
        assert min(timings[3:]) < 0.05

        blocker.execute("ROLLBACK")
        blocker.close()
        time.sleep(1.1)  # NB: the circuit's cool-down, then one probe goes through
        (record,) = opened.append(draft(9))
        assert record.seq == 2
        assert opened.run(opened.store.verify()).ok
    finally:
        opened.close()


def run_command(*args: str, database: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "DECISIONS_DATABASE_URL": f"sqlite:///{database}", "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "facade.records", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_commands_migrate_verify_and_purge(tmp_path: Path) -> None:
    database = tmp_path / "new" / "decisions.db"

    assert run_command("migrate", database=database).returncode == 0
    assert sqlite3.connect(database).execute("SELECT last_seq FROM decision_chain").fetchall() == [(0,)]

    opened = Store(database)
    try:
        opened.append(*(draft(n) for n in range(5)))
        opened.sql("UPDATE decision_records SET credit_score = 850 WHERE seq = 2")
    finally:
        opened.close()
    verified = run_command("verify", database=database)
    assert verified.returncode == 1
    report = json.loads(verified.stdout)
    assert report["ok"] is False
    assert report["first_broken"]["seq"] == 2
    assert report["records"] == 1

    purged = run_command("purge", "--days", "1", database=database)
    assert purged.returncode == 0
    assert json.loads(purged.stdout)["deleted"] == 0
    assert run_command("verify", "--since", "2020-01-01T00:00:00", database=database).returncode == 2
    # NB: the year 10000 in UTC: a usage error (2), never a broken chain (1).
    assert run_command("verify", "--since", "9999-12-31T23:59:59-23:59", database=database).returncode == 2


def test_the_database_url_is_never_logged_with_its_password() -> None:
    described = DecisionStore("postgresql://decisions:s3cret-pw@db.internal:5432/decisions").describe()

    assert "s3cret-pw" not in described
    assert described.startswith("postgresql+asyncpg://decisions:***@db.internal")


@pytest.mark.parametrize(
    "url", ["mysql://decisions:s3cret-pw@db/decisions", "decisions.db", "http://s3cret-pw@example/db"]
)
def test_the_records_database_setting_refuses_other_databases_without_quoting_it(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings.model_validate({"DECISIONS_DATABASE_URL": url})

    assert "DECISIONS_DATABASE_URL" in str(refused.value)
    assert "s3cret" not in str(refused.value)
    assert "decisions.db" not in str(refused.value)


def test_the_records_database_setting_takes_sqlite_and_postgresql_urls() -> None:
    for url in ("sqlite:///.run/decisions.db", "postgresql://u:p@db:5432/decisions", "postgres://u:p@db/d"):
        settings = Settings.model_validate({"DECISIONS_DATABASE_URL": url})
        assert settings.DECISIONS_DATABASE_URL is not None
        assert "p@" not in repr(settings)
    assert Settings.model_validate({"DECISIONS_DATABASE_URL": ""}).DECISIONS_DATABASE_URL is None


def test_the_ping_proves_a_record_could_be_written_and_never_closes_the_circuit(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    opened = Store(tmp_path / "decisions.db", write_timeout=0.3)
    try:
        opened.append(draft(0))
        opened.run(opened.store.ping())
        blocker = sqlite3.connect(opened.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # NB: another process writing: readable, not writable
        try:
            start = time.perf_counter()
            with pytest.raises(OperationalError):
                opened.run(opened.store.ping())
            assert time.perf_counter() - start < 1.5  # NB: within the write deadline (0.3 s)
            for n in range(3):
                with pytest.raises(RecordUnavailable):
                    opened.append(draft(n))
            assert opened.store.breaker.failing_fast
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

        opened.run(opened.store.ping())  # NB: writable again...
        assert opened.store.breaker.failing_fast  # ...but only a record written closes the circuit
        with pytest.raises(RecordUnavailable):
            opened.append(draft(4))  # NB: still refused at once during the pause
        time.sleep(1.1)
        (record,) = opened.append(draft(5))  # NB: the circuit's own probe, after its pause
        assert not opened.store.breaker.failing_fast
        assert record.seq == 2  # NB: the pings wrote nothing
        assert opened.sql("SELECT last_seq FROM decision_chain") == [(2,)]
    finally:
        opened.close()
