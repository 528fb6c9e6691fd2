"""live members counted per id prefix, so that an offset page skips whole buckets

An offset page in id order used to step through every row before it (half a workspace for a page in
the middle, even when read from the nearer end). Member ids are random UUIDs; kept counts per two-digit
prefix let a page find its bucket by arithmetic and step through one bucket's rows (~1/256 of them).
On PostgreSQL, member ids now compare byte by byte (COLLATE "C"), so that the ids of a bucket are one
run in id order whatever the database's default collation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Ids compared byte by byte whatever the database's default collation (SQLite's already is): a
        # bucket's members must be one run of ids from its prefix on. No foreign key refers to members.id.
        op.execute('ALTER TABLE members ALTER COLUMN id TYPE VARCHAR(36) COLLATE "C"')
    op.create_table(
        "member_buckets",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column(
            "prefix",
            sa.String(length=2).with_variant(sa.String(length=2, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("live", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_member_buckets_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "prefix", name=op.f("pk_member_buckets")),
    )
    op.execute(
        "INSERT INTO member_buckets (workspace_id, prefix, live) "
        "SELECT workspace_id, substr(id, 1, 2), count(*) FROM members "
        "WHERE deleted_at IS NULL GROUP BY workspace_id, substr(id, 1, 2)"
    )


def downgrade() -> None:
    op.drop_table("member_buckets")
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE members ALTER COLUMN id TYPE VARCHAR(36) COLLATE pg_catalog."default"')
