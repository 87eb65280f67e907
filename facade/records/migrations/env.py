"""Alembic's environment for the decision records: always given a connection by ``facade.records.migrate``.

NB: no alembic.ini and no URL here: ``python -m facade.records migrate`` and the facade's start
both run the migrations on a connection they opened from DECISIONS_DATABASE_URL.
"""

from __future__ import annotations

from alembic import context

from facade.records.tables import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the decision records' migrations with `python -m facade.records migrate`")

context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
