"""OAuth client secrets that survive a regeneration for a rotation window, and one-time reveals

A regenerated client secret may leave the previous one valid for a while (its SHA-256 and when it
stops), and each secret keeps its last characters so the console can tell them apart; a replaced bearer
token may likewise expire at the end of a window instead of being revoked at once. Credentials just
issued wait, encrypted, in ``credential_reveals`` for the one page view that shows them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import provisio.db.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret_hint", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_hint", sa.String(length=8), nullable=True))
        batch_op.add_column(
            sa.Column(
                "previous_secret_expires_at", provisio.db.models.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", provisio.db.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "credential_reveals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("expires_at", provisio.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_credential_reveals_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_reveals")),
    )
    op.create_index(
        op.f("ix_credential_reveals_expires_at"), "credential_reveals", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_credential_reveals_expires_at"), table_name="credential_reveals")
    op.drop_table("credential_reveals")
    with op.batch_alter_table("scim_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret_hint")
        batch_op.drop_column("previous_secret_hash")
        batch_op.drop_column("secret_hint")
