"""Host events: the changes the host application reads through the events API and webhooks

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "host_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("txid", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", JSONDoc, nullable=False),
        sa.Column("data", JSONDoc, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_host_events_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_host_events")),
        sa.UniqueConstraint("id", name=op.f("uq_host_events_id")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_host_events_order", "host_events", ["txid", "seq"])
    op.create_index("ix_host_events_workspace_order", "host_events", ["workspace_id", "txid", "seq"])
    op.create_index("ix_host_events_occurred_at", "host_events", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_host_events_occurred_at", table_name="host_events")
    op.drop_index("ix_host_events_workspace_order", table_name="host_events")
    op.drop_index("ix_host_events_order", table_name="host_events")
    op.drop_table("host_events")
