"""list pages and seat counts read from indexes alone

A workspace's live members (``deleted_at IS NULL``) in id order become a partial index: PostgreSQL does not
take an ``IS NULL`` column of a composite index as fixed, so with (workspace_id, deleted_at, id) it sorted
every member of the workspace for each page (``deleted_at`` stays a trailing column so that SQLite still
reads the index alone). Seats in use get a covering index, so that a POST counts them
without reading member rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_live")
        batch_op.create_index(
            "ix_members_live",
            ["workspace_id", "id", "deleted_at"],
            unique=False,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )
        batch_op.create_index("ix_members_seats", ["workspace_id", "active", "deleted_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_seats")
        batch_op.drop_index("ix_members_live")
        batch_op.create_index("ix_members_live", ["workspace_id", "deleted_at", "id"], unique=False)
