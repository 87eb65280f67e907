"""Decision records through the API, on a real SQLite database: every answered decision recorded
first, read back by id and in pages, verified; refused (503) when it cannot be recorded; bad ids and
parameters refused without echo; reading needs the decisions-read permission.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import SecretStr

from facade.core.config import Settings
from facade.core.security import ApiKey
from facade.main import create_app
from facade.security import SCOPE_DECISIONS_READ, SCOPE_PREDICT
from model_code.schema import SCHEMA_VERSION
from tests.facade.facade_fakes import APPROVED, REJECTED, RUN_1

KEY = "k3y-0f-the-records-auditor-5e1f"
DESK_KEY = "l0an-desk-predicts-only-9c2b"
# NB: values no other fixture uses, so that finding them in a log line can only mean a leak.
DISTINCT = {**APPROVED, "age": 36.0, "income": 81234.5, "total_debt": 7654.25}


def records_settings(settings: Settings, path: Path, **extra: Any) -> Settings:
    return settings.model_copy(
        update={
            "DECISIONS_DATABASE_URL": SecretStr(f"sqlite:///{path}"),
            "DECISION_PURGE_INTERVAL_SECONDS": 0.0,
            "MAX_BATCH_SIZE": 100,
            **extra,
        }
    )


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "decisions.db"


@pytest.fixture
def recorded(settings: Settings, upstream: respx.MockRouter, database: Path) -> Iterator[TestClient]:
    with TestClient(create_app(records_settings(settings, database))) as client:
        yield client


def commits() -> float:
    return REGISTRY.get_sample_value("credit_decision_record_write_seconds_count") or 0.0


def sql(database: Path, statement: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(statement, params).fetchall()


def test_a_decision_is_recorded_with_everything_it_was_given_and_answered(recorded: TestClient) -> None:
    answer = recorded.post("/api/v1/predict", json=DISTINCT, headers={"X-Request-ID": "loan-desk-0001"})
    assert answer.status_code == 200
    decision = answer.json()

    record = recorded.get(f"/api/v1/decisions/{decision['application_id']}")

    assert record.status_code == 200
    stored = record.json()
    assert stored["application_id"] == decision["application_id"]
    assert stored["timestamp"] == decision["timestamp"]
    assert stored["request_id"] == "loan-desk-0001" == answer.headers["x-request-id"]
    assert stored["client"] == "anonymous"
    assert (stored["model_name"], stored["model_version"], stored["model_run_id"]) == (
        "credit-score",
        "1",
        RUN_1,
    )
    for field in ("prediction", "approval_probability", "rejection_probability", "risk_score", "confidence"):
        assert stored[field] == decision[field], field
    assert stored["credit_score"] == decision["credit_score"]
    assert stored["reasons"] == decision["reasons"]
    assert stored["decision_threshold"] == 0.45  # NB: the served run's param (facade_fakes.RUN_BODY)
    assert stored["schema_version"] == SCHEMA_VERSION
    # Exactly as entered: the JSON text of the record has 36.0 where the client sent 36.0.
    assert stored["application"] == DISTINCT
    assert '"age":36.0' in record.text.replace(" ", "")
    assert stored["seq"] == 1
    assert len(stored["record_hash"]) == 64
    assert stored["prev_hash"] == "0" * 64


def test_a_batch_is_recorded_in_one_transaction_before_it_is_answered(
    recorded: TestClient, database: Path
) -> None:
    before = commits()
    answer = recorded.post("/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED, APPROVED]})

    assert answer.status_code == 200
    assert commits() - before == 1
    ids = [p["application_id"] for p in answer.json()["predictions"]]
    rows = sql(database, "SELECT seq, prediction FROM decision_records ORDER BY seq")
    assert [prediction for _, prediction in rows] == ["APPROVED", "REJECTED", "APPROVED"]
    assert [recorded.get(f"/api/v1/decisions/{i}").json()["seq"] for i in ids] == [1, 2, 3]


def test_a_decision_that_cannot_be_recorded_is_not_returned(
    settings: Settings, upstream: respx.MockRouter, database: Path
) -> None:
    app = create_app(records_settings(settings, database, DECISION_WRITE_TIMEOUT_SECONDS=0.3))
    with TestClient(app) as client:
        assert client.post("/api/v1/predict", json=APPROVED).status_code == 200
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # NB: another process holding the write lock
        try:
            single = client.post("/api/v1/predict", json=DISTINCT)
            batch = client.post("/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED]})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

        for refused in (single, batch):
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["type"].endswith("/decision-record-unavailable")
            assert "application_id" not in refused.text
            assert "81234" not in refused.text
        time.sleep(1.1)  # NB: the records circuit's cool-down
        again = client.post("/api/v1/predict", json=APPROVED)
        assert again.status_code == 200
        assert client.get(f"/api/v1/decisions/{again.json()['application_id']}").status_code == 200
    assert sql(database, "SELECT count(*) FROM decision_records") == [(2,)]


def test_an_unknown_id_is_404_and_a_malformed_one_422_never_echoed(recorded: TestClient) -> None:
    unknown = recorded.get("/api/v1/decisions/7d444840-9dc0-11d1-b245-5ffdce74fad2")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["type"].endswith("/decision-record-not-found")
    assert "7d444840" not in unknown.text

    for malformed in ("John-Doe-123-45-6789", "5f0c1f9e-3c4b-4d8e-9a51", "%27%20OR%201%3D1"):
        response = recorded.get(f"/api/v1/decisions/{malformed}")
        assert response.status_code == 422, malformed
        body = response.json()
        assert body["errors"] == [
            {"field": "path.application_id", "rule": "must be a UUID, as an answer's application_id"}
        ]
        assert body["instance"] == "/api/v1/decisions/{application_id}"
        for part in ("John", "6789", "3c4b", "OR 1"):
            assert part not in response.text


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("since=yesterday", "since"),
        ("since=2031-07-04T12:30:00", "since"),  # NB: no UTC offset
        ("until=1767225600", "until"),  # NB: a bare number is not a date-time
        ("since=9999-12-31T23:59:59-23:59", "since"),  # NB: in UTC, the year 10000
        ("until=0001-01-01T00:00:00%2B23:00", "until"),  # NB: in UTC, the year 0
        ("prediction=MAYBE-SSN-123456789", "prediction"),
        ("model_version=v1-123456789", "model_version"),
        ("cursor=eyJzZXEiOjEyMzQ1Njc4OX0", "cursor"),
        ("limit=0", "limit"),
        ("limit=123456789", "limit"),
        ("applicant=123456789", "applicant"),
    ],
)
def test_bad_query_parameters_are_422_naming_the_parameter_never_its_value(
    recorded: TestClient, query: str, parameter: str, caplog: pytest.LogCaptureFixture
) -> None:
    for path in ("/api/v1/decisions", "/api/v1/decisions/verify"):
        if path.endswith("verify") and parameter not in ("since", "until", "applicant"):
            continue
        response = recorded.get(f"{path}?{query}")
        assert response.status_code == 422, (path, query)
        errors = response.json()["errors"]
        assert [error["field"] for error in errors] == [f"query.{parameter}"]
        if parameter in ("since", "until"):
            assert "between 0001-01-01 and 9999-12-31 in UTC" in errors[0]["rule"]
        value = query.partition("=")[2]
        if len(value) > 3:  # NB: "0" is in any body
            assert value not in response.text
            assert value.replace("%2B", "+") not in response.text
        assert "123456789" not in response.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_failure_that_is_not_the_database_is_not_blamed_on_it(
    recorded: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facade.records.store import DecisionStore

    async def bug(self: DecisionStore, **_: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(DecisionStore, "page", bug)

    response = recorded.get("/api/v1/decisions")

    # NB: a bug is a 500 (logged with its traceback), not a 503 telling clients to retry.
    assert response.status_code == 500
    assert "retry-after" not in response.headers


def test_pages_are_stable_while_decisions_are_being_recorded(recorded: TestClient) -> None:
    first = recorded.post("/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED] * 10})
    assert first.status_code == 200
    initial = {p["application_id"] for p in first.json()["predictions"]}

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = recorded.get(f"/api/v1/decisions?{query}")
        assert page.status_code == 200
        body = page.json()
        seen += body["records"]
        pages += 1
        if pages <= 6:  # NB: decisions keep being recorded between the first pages
            assert (
                recorded.post("/api/v1/predict", json=REJECTED if pages % 2 else APPROVED).status_code == 200
            )
        cursor = body["next_cursor"]
        if cursor is None:
            break

    seqs = [record["seq"] for record in seen]
    assert seqs == list(range(1, 27))  # NB: 20 + the 6 written meanwhile, each once, in order
    assert initial <= {record["application_id"] for record in seen}
    times = [record["timestamp"] for record in seen]
    assert times == sorted(times)


def test_pages_filter_by_decision_version_and_time(recorded: TestClient) -> None:
    answer = recorded.post("/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED, REJECTED]})
    at = answer.json()["predictions"][0]["timestamp"].replace("+00:00", "Z")

    rejected = recorded.get("/api/v1/decisions?prediction=REJECTED").json()
    assert [r["seq"] for r in rejected["records"]] == [2, 3]
    assert recorded.get("/api/v1/decisions?model_version=1").json()["count"] == 3
    assert recorded.get("/api/v1/decisions?model_version=2").json()["count"] == 0
    assert recorded.get(f"/api/v1/decisions?since={at}").json()["count"] == 3
    assert recorded.get(f"/api/v1/decisions?until={at}").json()["count"] == 0
    assert recorded.get("/api/v1/decisions?since=2999-01-01T00:00:00%2B02:00").json()["count"] == 0


def test_verify_reports_an_intact_chain_and_names_the_first_broken_link(
    recorded: TestClient, database: Path
) -> None:
    ids = [
        p["application_id"]
        for p in recorded.post(
            "/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED] * 3}
        ).json()["predictions"]
    ]

    assert recorded.get("/api/v1/decisions/verify").json() == {"ok": True, "records": 6, "first_broken": None}

    sql(database, "UPDATE decision_records SET prediction = 'APPROVED' WHERE seq = 4")
    edited = recorded.get("/api/v1/decisions/verify").json()
    assert edited["ok"] is False
    assert edited["records"] == 3
    assert edited["first_broken"]["seq"] == 4
    assert edited["first_broken"]["application_id"] == ids[3]
    assert "changed" in edited["first_broken"]["problem"]

    sql(database, "UPDATE decision_records SET prediction = 'REJECTED' WHERE seq = 4")
    sql(database, "DELETE FROM decision_records WHERE seq = 2")
    deleted = recorded.get("/api/v1/decisions/verify").json()
    assert deleted["first_broken"]["seq"] == 3
    assert deleted["first_broken"]["application_id"] == ids[2]
    assert deleted["first_broken"]["problem"] == "record 2, the one before it, is missing"


def test_applicant_values_are_stored_but_never_logged(
    settings: Settings, upstream: respx.MockRouter, database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(records_settings(settings, database, DECISION_WRITE_TIMEOUT_SECONDS=0.3))
    # NB: the facade's loggers and SQLAlchemy's at DEBUG, whatever level the app gave them (the facade
    # sets its own to LOG_LEVEL; SQLAlchemy's engine logger is held at WARNING below these).
    with (
        TestClient(app) as client,
        caplog.at_level(logging.DEBUG, logger="facade"),
        caplog.at_level(logging.DEBUG, logger="sqlalchemy"),
    ):
        client.post("/api/v1/predict", json=DISTINCT)
        client.post("/api/v1/predict/batch", json={"applications": [DISTINCT]})
        listed = client.get("/api/v1/decisions")
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # NB: and the records cannot be written
        try:
            refused = client.post("/api/v1/predict", json=DISTINCT)
            refused_batch = client.post("/api/v1/predict/batch", json={"applications": [DISTINCT]})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    assert "81234.5" in listed.text  # NB: stored and readable by whoever may read records
    assert (refused.status_code, refused_batch.status_code) == (503, 503)
    # NB: what was captured: the failed commits' warnings and the access log lines, at least.
    assert any("records failed" in record.getMessage() for record in caplog.records)
    assert any(record.name == "facade.access" for record in caplog.records)

    # NB: the income as a number of its own (81234, 81234.5, 81234.50, 81,234.5, in a tuple, a
    # list or a JSON object), not five digits inside a longer number: a record's clock fields and
    # thread id are numbers too, and may hold "81234".
    income = re.compile(r"(?<![\d.])81,?234(?:\.50*)?(?!\.?\d)")
    for record in caplog.records:
        logged = record.getMessage() + json.dumps({k: str(v) for k, v in vars(record).items()})
        assert income.search(logged) is None
        assert "7654.25" not in logged


def test_records_off_answers_501(client: TestClient) -> None:
    for path in (
        "/api/v1/decisions",
        "/api/v1/decisions/verify",
        "/api/v1/decisions/7d444840-9dc0-11d1-b245-5ffdce74fad2",
    ):
        response = client.get(path)
        assert response.status_code == 501
        assert response.json()["type"].endswith("/decision-records-off")
    assert client.post("/api/v1/predict", json=APPROVED).status_code == 200


@pytest.fixture
def keyed(settings: Settings, upstream: respx.MockRouter, database: Path) -> Iterator[TestClient]:
    """Two named keys: an auditor who may predict and read records, a loan desk that may only predict."""
    keys = (
        ApiKey("auditor", frozenset({SCOPE_PREDICT, SCOPE_DECISIONS_READ}), KEY),
        ApiKey("loan-desk", frozenset({SCOPE_PREDICT}), DESK_KEY),
    )
    app = create_app(records_settings(settings, database).model_copy(update={"_api_keys": keys}))
    with TestClient(app) as client:
        yield client


READ_ROUTES = [
    "/api/v1/decisions",
    "/api/v1/decisions/verify",
    "/api/v1/decisions/7d444840-9dc0-11d1-b245-5ffdce74fad2",
]


@pytest.mark.parametrize("path", READ_ROUTES)
def test_reading_records_needs_a_key_when_keys_are_on(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 401
    assert keyed.get(path, headers={"X-API-Key": KEY}).status_code in (200, 404)


def test_the_record_names_the_client(keyed: TestClient) -> None:
    answer = keyed.post("/api/v1/predict", json=APPROVED, headers={"X-API-Key": DESK_KEY})
    batch = keyed.post("/api/v1/predict/batch", json={"applications": [APPROVED]}, headers={"X-API-Key": KEY})

    record = keyed.get(f"/api/v1/decisions/{answer.json()['application_id']}", headers={"X-API-Key": KEY})
    batch_record = keyed.get(
        f"/api/v1/decisions/{batch.json()['predictions'][0]['application_id']}", headers={"X-API-Key": KEY}
    )

    assert record.json()["client"] == "loan-desk"
    assert batch_record.json()["client"] == "auditor"
    assert DESK_KEY not in record.text
    assert KEY not in record.text


@pytest.mark.parametrize("path", READ_ROUTES)
def test_reading_records_without_the_permission_is_403(keyed: TestClient, path: str) -> None:
    # NB: the loan desk may predict, so it may write records, but it may not read them back.
    assert keyed.post("/api/v1/predict", json=APPROVED, headers={"X-API-Key": DESK_KEY}).status_code == 200

    response = keyed.get(path, headers={"X-API-Key": DESK_KEY})

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert SCOPE_DECISIONS_READ in response.json()["detail"]
    assert "record_hash" not in response.text
    assert DESK_KEY not in response.text


@pytest.mark.parametrize(
    ("column", "tampered"),
    [
        ("prediction", "'MAYBE-123456789'"),  # NB: not a decision the contract knows
        ("credit_score", "'123456789x'"),  # NB: SQLite keeps text in an INTEGER column
        ("reasons", "'\"123456789\"'"),  # NB: JSON, but not a list of reasons
        ("application", "'[123456789]'"),  # NB: JSON, but not an object
        ("application", "'{\"income\": 123456789'"),  # NB: no longer JSON at all
        ("recorded_at", "'123456789'"),  # NB: no longer a time
    ],
    ids=["prediction", "credit_score", "reasons", "application-list", "application-not-json", "timestamp"],
)
def test_a_record_changed_in_the_database_is_409_naming_its_seq_never_its_values(
    recorded: TestClient, database: Path, column: str, tampered: str
) -> None:
    ids = [
        p["application_id"]
        for p in recorded.post(
            "/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED] * 2}
        ).json()["predictions"]
    ]
    sql(database, f"UPDATE decision_records SET {column} = {tampered} WHERE seq = 3")

    one = recorded.get(f"/api/v1/decisions/{ids[2]}")
    page = recorded.get("/api/v1/decisions")

    for response in (one, page):
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"].endswith("/decision-record-invalid")
        assert "seq 3" in body["detail"]
        assert "/decisions/verify" in body["detail"]
        assert "123456789" not in response.text
        assert ids[2] not in response.text
    assert one.json()["instance"] == "/api/v1/decisions/{application_id}"
    # The records around it still read, and the page after it is reachable.
    assert recorded.get(f"/api/v1/decisions/{ids[1]}").status_code == 200
    assert "cursor=c0000000000000003" in page.json()["detail"]
    after = recorded.get("/api/v1/decisions?cursor=c0000000000000003").json()
    assert [r["seq"] for r in after["records"]] == [4]
    # And verify names it as the first broken link.
    verified = recorded.get("/api/v1/decisions/verify")
    assert verified.status_code == 200
    assert verified.json()["ok"] is False
    assert verified.json()["records"] == 2
    assert verified.json()["first_broken"]["seq"] == 3
    assert "changed" in verified.json()["first_broken"]["problem"]


def test_an_unexpected_error_is_a_bare_500_whose_instance_never_repeats_a_path_parameter(
    recorded: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import facade.api.routes.decisions as routes

    answer = recorded.post("/api/v1/predict", json=APPROVED).json()

    def bug(record: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(routes, "_validated", bug)

    response = recorded.get(f"/api/v1/decisions/{answer['application_id']}")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["instance"] == "/api/v1/decisions/{application_id}"
    assert answer["application_id"] not in response.text
    assert any("unhandled RuntimeError" in message for message in caplog.messages)


def test_readiness_is_503_while_decisions_cannot_be_written_though_the_database_reads(
    settings: Settings, upstream: respx.MockRouter, database: Path
) -> None:
    app = create_app(records_settings(settings, database, DECISION_WRITE_TIMEOUT_SECONDS=0.3))
    with TestClient(app) as client:
        assert client.get("/api/v1/health/ready").status_code == 200
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # NB: another process holds the write lock; reads go on
        try:
            assert client.get("/api/v1/decisions").status_code == 200
            ready = client.get("/api/v1/health/ready")
            assert client.post("/api/v1/predict", json=APPROVED).status_code == 503
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"
        assert "decision records cannot be written" in ready.json()["detail"]
        assert client.get("/api/v1/health/ready").status_code == 200


def submission(n: int) -> Any:
    from facade.service import Submission

    return Submission(application=APPROVED, entered=APPROVED, request_id=f"req-{n}", client="anonymous")


def test_a_micro_batch_of_a_run_just_served_is_one_registry_read_and_one_transaction(
    settings: Settings, upstream: respx.MockRouter, database: Path
) -> None:
    """The first decisions of a run (after a start or a rollout): its threshold is read once, with the
    version, and the micro-batch's records still share a transaction."""
    from tests.facade.facade_fakes import RUN_BODY

    async def run_over_the_network(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # NB: a real round trip suspends the caller
        return httpx.Response(200, json=RUN_BODY)

    upstream["run"].mock(side_effect=run_over_the_network)
    batching = {"MICROBATCH_MAX_ROWS": 8, "MICROBATCH_MAX_CONCURRENCY": 1}
    with TestClient(create_app(records_settings(settings, database, **batching))) as client:
        service = client.app_state["service"]
        runs_before, commits_before = upstream["run"].call_count, commits()

        async def eight_at_once() -> list[Any]:
            return await asyncio.gather(*(service.decide_one(submission(n)) for n in range(8)))

        decisions = client.portal.call(eight_at_once)  # type: ignore[union-attr]

        assert upstream["run"].call_count - runs_before == 1
        assert commits() - commits_before == 1
        assert len({decision.timestamp for decision in decisions}) == 1
        rows = sql(database, "SELECT seq, decision_threshold FROM decision_records ORDER BY seq")
        assert rows == [(seq, 0.45) for seq in range(1, 9)]


def predictions_counted() -> float:
    return sum(
        REGISTRY.get_sample_value("predictions_total", {"result": result, "model_version": "1"}) or 0.0
        for result in ("APPROVED", "REJECTED")
    )


def test_a_decision_refused_for_its_record_is_not_counted_nor_watched_for_drift(
    settings: Settings, upstream: respx.MockRouter, database: Path
) -> None:
    app = create_app(records_settings(settings, database, DECISION_WRITE_TIMEOUT_SECONDS=0.3))
    with TestClient(app) as client:
        service = client.app_state["service"]
        assert client.post("/api/v1/predict", json=APPROVED).status_code == 200
        counted, watched = predictions_counted(), len(service.drift._window)
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            single = client.post("/api/v1/predict", json=APPROVED)
            batch = client.post("/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED]})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert (single.status_code, batch.status_code) == (503, 503)
        assert predictions_counted() == counted
        assert len(service.drift._window) == watched

        time.sleep(1.1)  # NB: the records circuit's pause
        assert (
            client.post("/api/v1/predict/batch", json={"applications": [APPROVED, REJECTED]}).status_code
            == 200
        )
        assert predictions_counted() == counted + 2
        assert len(service.drift._window) == watched + 2
