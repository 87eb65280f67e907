"""Alembic migrations of the decision records, run on an open connection (at start, or by command).

The scripts ship inside the package (``facade/records/migrations``), so the facade image, which
copies ``facade/``, has them; there is no alembic.ini. ``python -m facade.records migrate`` runs
the same upgrade as the facade's start.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from facade.records.tables import VERSION_TABLE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# NB: an arbitrary constant key for pg_advisory_xact_lock: replicas starting at once migrate one
# after the other instead of racing to create the same tables.
_MIGRATION_LOCK = 0x6372656463  # "credc"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for these migrations, on ``connection`` when one is given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection) -> None:
    """Bring the schema to the newest revision (a no-op when it is there); run inside a transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), "head")


def pending(connection: Connection) -> bool:
    """True when the database is not at the newest revision (the facade then refuses to start)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    current = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()
    return current != head
