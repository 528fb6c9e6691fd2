"""Webhooks: endpoints, their delivery attempts, the fan-out's place in the host events, and ordered
outbox rows

``webhook_endpoints`` are the URLs that receive host events (signing secrets encrypted);
``webhook_attempts`` logs every delivery attempt; ``webhook_fanout`` is the one row that says how far
the fan-out has read ``host_events``. The outbox gains ``ordering_key``/``ordering_seq``: rows of one key
leave one at a time, in order.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import provisio.db.models

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ORDERED_PENDING = "ordering_key IS NOT NULL AND sent_at IS NULL AND dead_at IS NULL"


def upgrade() -> None:
    when = provisio.db.models.UTCDateTime(timezone=True)
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column(
                "ordering_key",
                sa.String(length=100).with_variant(sa.String(length=100, collation="C"), "postgresql"),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("ordering_seq", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_outbox_ordering",
        "outbox",
        ["ordering_key", "ordering_seq"],
        unique=False,
        sqlite_where=sa.text(ORDERED_PENDING),
        postgresql_where=sa.text(ORDERED_PENDING),
    )

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("event_types", JSONDoc, nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=True),
        sa.Column("description", sa.String(length=500), server_default="", nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.Column("disabled_at", when, nullable=True),
        sa.Column("disabled_reason", sa.String(length=500), nullable=True),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("previous_secret_sealed", sa.Text(), nullable=True),
        sa.Column("previous_secret_until", when, nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_webhook_endpoints_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index("ix_webhook_endpoints_workspace_id", "webhook_endpoints", ["workspace_id"])

    op.create_table(
        "webhook_attempts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", when, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=40), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("next_retry_at", when, nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_attempts_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_webhook_attempts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index("ix_webhook_attempts_endpoint", "webhook_attempts", ["endpoint_id", "id"])
    op.create_index(
        "ix_webhook_attempts_endpoint_outcome", "webhook_attempts", ["endpoint_id", "outcome", "id"]
    )
    op.create_index(
        "ix_webhook_attempts_endpoint_event", "webhook_attempts", ["endpoint_id", "event_id", "id"]
    )
    op.create_index("ix_webhook_attempts_workspace", "webhook_attempts", ["workspace_id", "id"])
    op.create_index("ix_webhook_attempts_started_at", "webhook_attempts", ["started_at"])

    fanout = op.create_table(
        "webhook_fanout",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_fanout")),
    )
    # Before the first host event: no endpoint exists yet, so the fan-out's first passes only skip
    # ahead to the newest event.
    op.bulk_insert(fanout, [{"id": 1, "txid": -1, "seq": -1, "updated_at": provisio.db.models.utcnow()}])


def downgrade() -> None:
    op.drop_table("webhook_fanout")
    op.drop_index("ix_webhook_attempts_started_at", table_name="webhook_attempts")
    op.drop_index("ix_webhook_attempts_workspace", table_name="webhook_attempts")
    op.drop_index("ix_webhook_attempts_endpoint_event", table_name="webhook_attempts")
    op.drop_index("ix_webhook_attempts_endpoint_outcome", table_name="webhook_attempts")
    op.drop_index("ix_webhook_attempts_endpoint", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_endpoints_workspace_id", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    # Webhook rows cannot be delivered by the older schema's worker: they go with the columns.
    op.execute("DELETE FROM outbox WHERE kind = 'webhook'")
    op.drop_index("ix_outbox_ordering", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("ordering_seq")
        batch.drop_column("ordering_key")
