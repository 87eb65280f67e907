"""Decision records and the head of their hash chain.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from facade.records.chain import GENESIS_HASH
from facade.records.tables import HEAD_ID, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "decision_records",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("client", sa.String(256), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("model_run_id", sa.String(32), nullable=False),
        sa.Column("prediction", sa.String(16), nullable=False),
        sa.Column("approval_probability", sa.Double(), nullable=False),
        sa.Column("rejection_probability", sa.Double(), nullable=False),
        sa.Column("risk_score", sa.Double(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("credit_score", sa.Integer(), nullable=False),
        sa.Column("decision_threshold", sa.Double(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("application", sa.JSON(), nullable=False),
        sa.Column("schema_version", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_decision_records"),
        sa.UniqueConstraint("application_id", name="uq_decision_records_application_id"),
    )
    op.create_index("ix_decision_records_recorded_at", "decision_records", ["recorded_at"])
    chain = op.create_table(
        "decision_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=True),
        sa.Column("anchor_seq", sa.BigInteger(), nullable=False),
        sa.Column("anchor_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_decision_chain"),
    )
    # NB: the head every append locks; an empty chain starts after seq 0 at the genesis hash.
    op.bulk_insert(
        chain,
        [
            {
                "id": HEAD_ID,
                "last_seq": 0,
                "last_hash": GENESIS_HASH,
                "last_at": None,
                "anchor_seq": 1,
                "anchor_hash": GENESIS_HASH,
            }
        ],
    )


def downgrade() -> None:
    op.drop_table("decision_chain")
    op.drop_index("ix_decision_records_recorded_at", table_name="decision_records")
    op.drop_table("decision_records")
