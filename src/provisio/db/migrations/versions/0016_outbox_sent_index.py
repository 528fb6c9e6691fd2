"""Outbox retention: an index of the sent rows by when they were sent, for pruning them

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

SENT = "sent_at IS NOT NULL"


def upgrade() -> None:
    # Partial: the pending rows (sent_at NULL) are in ix_outbox_pending_due already.
    op.create_index(
        "ix_outbox_sent",
        "outbox",
        ["sent_at"],
        unique=False,
        sqlite_where=sa.text(SENT),
        postgresql_where=sa.text(SENT),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_sent", table_name="outbox")
