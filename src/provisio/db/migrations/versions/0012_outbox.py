"""Outbox of notifications and the heartbeats of the workers that deliver them

``outbox`` holds e-mails (later webhooks) written in the transaction that causes them, leased and
delivered by a worker; ``worker_heartbeats`` tells health checks that a worker is alive.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import provisio.db.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

PENDING = "sent_at IS NULL AND dead_at IS NULL"
DEAD = "dead_at IS NOT NULL"


def upgrade() -> None:
    when = provisio.db.models.UTCDateTime(timezone=True)
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.Column("available_at", when, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_until", when, nullable=True),
        sa.Column("sent_at", when, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("dead_at", when, nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_outbox_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_dedupe_key")),
    )
    op.create_index(
        "ix_outbox_pending_due",
        "outbox",
        ["available_at"],
        unique=False,
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )
    op.create_index(
        "ix_outbox_dead",
        "outbox",
        ["dead_at"],
        unique=False,
        sqlite_where=sa.text(DEAD),
        postgresql_where=sa.text(DEAD),
    )
    op.create_index("ix_outbox_workspace_id", "outbox", ["workspace_id"], unique=False)
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=100), nullable=False),
        sa.Column("beat_at", when, nullable=False),
        sa.Column("started_at", when, nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
    op.drop_index("ix_outbox_workspace_id", table_name="outbox")
    op.drop_index("ix_outbox_dead", table_name="outbox")
    op.drop_index("ix_outbox_pending_due", table_name="outbox")
    op.drop_table("outbox")
