"""The decision records' tables, as SQLAlchemy Core metadata (the migrations create the same).

``decision_records`` holds one row a decision, keyed by ``seq``, its place in the hash chain;
``decision_chain`` holds one row, the chain's head (the last ``seq``, its hash and time) and its
anchor (the first ``seq`` the chain still holds and the ``prev_hash`` that record must carry,
moved forward by each retention purge). Every append locks the head row, which is what gives
concurrent writers, in one process or in many replicas, one order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# NB: its own version table, so that pointing DECISIONS_DATABASE_URL at a database that already
# has Alembic migrations of its own (MLflow's, say) cannot mix the two histories.
VERSION_TABLE = "decision_records_version"
HEAD_ID = 1


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    NB: PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so the value is stored as naive
    UTC text (which sorts as time does) and given its UTC zone back when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("decision record times must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

decision_records = Table(
    "decision_records",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("application_id", Uuid, nullable=False, unique=True),
    Column("recorded_at", UTCDateTime, nullable=False, index=True),
    Column("request_id", String(64), nullable=False),
    Column("client", String(256), nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("model_version", String(32), nullable=False),
    Column("model_run_id", String(32), nullable=False),
    Column("prediction", String(16), nullable=False),
    Column("approval_probability", Double, nullable=False),
    Column("rejection_probability", Double, nullable=False),
    Column("risk_score", Double, nullable=False),
    Column("confidence", Double, nullable=False),
    Column("credit_score", Integer, nullable=False),
    Column("decision_threshold", Double, nullable=True),
    # NB: JSON, not PostgreSQL's JSONB: json keeps the text as written (36.0 stays 36.0, keys keep
    # their order), which is what "as entered" asks of the application.
    Column("reasons", JSON, nullable=False),
    Column("application", JSON, nullable=False),
    Column("schema_version", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("record_hash", String(64), nullable=False),
)

decision_chain = Table(
    "decision_chain",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("last_at", UTCDateTime, nullable=True),
    Column("anchor_seq", BigInteger, nullable=False),
    Column("anchor_hash", String(64), nullable=False),
)
