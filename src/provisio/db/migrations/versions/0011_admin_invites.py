"""Several admins per workspace, added by e-mail

An admin added by e-mail has no password until they set one with a one-time link: ``admins.password_hash``
may be empty, the link's SHA-256 waits in ``admin_password_tokens``, and ``workspace_admins`` records
who granted each admin the workspace.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import provisio.db.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("admins", schema=None) as batch_op:
        batch_op.alter_column("password_hash", existing_type=sa.String(length=255), nullable=True)
    with op.batch_alter_table("workspace_admins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("added_by", sa.String(length=320), nullable=True))
    op.create_table(
        "admin_password_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("admin_id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", provisio.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", provisio.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["admin_id"],
            ["admins.id"],
            name=op.f("fk_admin_password_tokens_admin_id_admins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_password_tokens")),
        sa.UniqueConstraint("admin_id", name=op.f("uq_admin_password_tokens_admin_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_admin_password_tokens_token_hash")),
    )


def downgrade() -> None:
    # Accounts that never set a password cannot be kept once a password is required again. SQLite runs
    # migrations with foreign keys off, so no ON DELETE CASCADE removes their rows elsewhere: delete
    # those first, or workspace_admins and console_sessions would keep rows of accounts that are gone.
    pending = "SELECT id FROM admins WHERE password_hash IS NULL"
    for table in ("admin_password_tokens", "workspace_admins", "console_sessions"):
        op.execute(f"DELETE FROM {table} WHERE admin_id IN ({pending})")
    for table in ("oauth_authorization_codes", "oauth_tokens"):  # their ON DELETE is SET NULL
        op.execute(f"UPDATE {table} SET admin_id = NULL WHERE admin_id IN ({pending})")
    op.drop_table("admin_password_tokens")
    with op.batch_alter_table("workspace_admins", schema=None) as batch_op:
        batch_op.drop_column("added_by")
    op.execute("DELETE FROM admins WHERE password_hash IS NULL")
    with op.batch_alter_table("admins", schema=None) as batch_op:
        batch_op.alter_column("password_hash", existing_type=sa.String(length=255), nullable=False)
