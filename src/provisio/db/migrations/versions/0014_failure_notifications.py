"""Failure e-mails: per-workspace notification state, digest entries, extra recipients and opt-outs

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import provisio.db.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=op.f(f"fk_{table}_workspace_id_workspaces"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    when = provisio.db.models.UTCDateTime(timezone=True)
    op.create_table(
        "notification_states",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("digest_seconds", sa.Integer(), nullable=True),
        sa.Column("window_started_at", when, nullable=True),
        sa.Column("window_ends_at", when, nullable=True),
        sa.Column("prompted", sa.String(length=400), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("overflow", sa.Integer(), nullable=False),
        _workspace_fk("notification_states"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_notification_states")),
    )
    op.create_index(op.f("ix_notification_states_window_ends_at"), "notification_states", ["window_ends_at"])
    op.create_table(
        "notification_digest_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("user_name", sa.String(length=512), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", when, nullable=False),
        sa.Column("last_at", when, nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        _workspace_fk("notification_digest_entries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_digest_entries")),
    )
    op.create_index(
        "uq_notification_digest_entries_key",
        "notification_digest_entries",
        ["workspace_id", "reason", "user_name"],
        unique=True,
    )
    op.create_table(
        "notification_recipients",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_lower", sa.String(length=320), nullable=False),
        sa.Column("added_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", when, nullable=False),
        _workspace_fk("notification_recipients"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_recipients")),
    )
    op.create_index(
        "uq_notification_recipients_address",
        "notification_recipients",
        ["workspace_id", "email_lower"],
        unique=True,
    )
    op.create_table(
        "notification_opt_outs",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("email_lower", sa.String(length=320), nullable=False),
        sa.Column("at", when, nullable=False),
        _workspace_fk("notification_opt_outs"),
        sa.PrimaryKeyConstraint("workspace_id", "email_lower", name=op.f("pk_notification_opt_outs")),
    )


def downgrade() -> None:
    op.drop_table("notification_opt_outs")
    op.drop_index("uq_notification_recipients_address", table_name="notification_recipients")
    op.drop_table("notification_recipients")
    op.drop_index("uq_notification_digest_entries_key", table_name="notification_digest_entries")
    op.drop_table("notification_digest_entries")
    op.drop_index(op.f("ix_notification_states_window_ends_at"), table_name="notification_states")
    op.drop_table("notification_states")
