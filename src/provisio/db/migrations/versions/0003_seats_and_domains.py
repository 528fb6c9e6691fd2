"""seat ledger, verified domains and "allow other domains"

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import provisio.db.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("allow_other_domains", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )

    op.create_table(
        "seat_ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("at", provisio.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("seats_after", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=600), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_seat_ledger_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat_ledger")),
    )
    with op.batch_alter_table("seat_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_seat_ledger_workspace_id", ["workspace_id", "id"], unique=False)

    op.create_table(
        "workspace_domains",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("verification_code", sa.String(length=64), nullable=False),
        sa.Column("created_at", provisio.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("verified_at", provisio.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verified_by", sa.String(length=20), nullable=True),
        sa.Column("last_checked_at", provisio.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_domains_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_domains")),
    )
    with op.batch_alter_table("workspace_domains", schema=None) as batch_op:
        batch_op.create_index(
            "uq_workspace_domains_workspace_domain", ["workspace_id", "domain"], unique=True
        )
        batch_op.create_index(
            "uq_workspace_domains_verified",
            ["domain"],
            unique=True,
            sqlite_where=sa.text("verified_at IS NOT NULL"),
            postgresql_where=sa.text("verified_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("workspace_domains", schema=None) as batch_op:
        batch_op.drop_index("uq_workspace_domains_verified")
        batch_op.drop_index("uq_workspace_domains_workspace_domain")
    op.drop_table("workspace_domains")
    with op.batch_alter_table("seat_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_seat_ledger_workspace_id")
    op.drop_table("seat_ledger")
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("allow_other_domains")
