"""Sign-in links (portal links) of the management API

A host application asks for a single-use link that signs a person in to the console as an admin of one
workspace: its token's SHA-256 waits in ``portal_links``. The console session it starts is limited to
that workspace (``console_sessions.workspace_id``) and remembers where "Back to <host>" leads
(``console_sessions.return_url``); password sign-ins leave both empty.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import provisio.db.models

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = provisio.db.models.UTCDateTime(timezone=True)
    op.create_table(
        "portal_links",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("return_url", sa.String(length=2000), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("expires_at", when, nullable=False),
        sa.Column("used_at", when, nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_portal_links_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_portal_links_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_portal_links_token_hash")),
    )
    op.create_index(op.f("ix_portal_links_workspace_id"), "portal_links", ["workspace_id"])
    op.create_index(op.f("ix_portal_links_api_key_id"), "portal_links", ["api_key_id"])
    op.create_index(op.f("ix_portal_links_expires_at"), "portal_links", ["expires_at"])
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workspace_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("return_url", sa.String(length=2000), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_console_sessions_workspace_id_workspaces"),
            "workspaces",
            ["workspace_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    # A session limited to one workspace would reach every workspace of its account once the column is
    # gone: such sessions end with it.
    op.execute("DELETE FROM console_sessions WHERE workspace_id IS NOT NULL")
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_console_sessions_workspace_id_workspaces"), type_="foreignkey"
        )
        batch_op.drop_column("return_url")
        batch_op.drop_column("workspace_id")
    op.drop_index(op.f("ix_portal_links_expires_at"), table_name="portal_links")
    op.drop_index(op.f("ix_portal_links_api_key_id"), table_name="portal_links")
    op.drop_index(op.f("ix_portal_links_workspace_id"), table_name="portal_links")
    op.drop_table("portal_links")
