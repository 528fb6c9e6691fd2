"""The admin-invites migration upgrades and downgrades on both databases, keeping the admins, their
workspaces and their console sessions (SQLite copies the ``admins`` table to relax ``password_hash``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, inspect, text

from tests.migrations import downgrade_to, execute, read, round_trip_on_fresh_database, upgrade_to

SEED = [
    "INSERT INTO workspaces (id, key, name, created_at, scim_enabled, seats_purchased, scim_auth_method, "
    "license_auto_charge, member_count, allow_other_domains) VALUES ('w1', 'w1', 'W', CURRENT_TIMESTAMP, "
    "false, 0, 'bearer', false, 0, false)",
    "INSERT INTO admins (id, email, email_lower, password_hash, created_at) "
    "VALUES ('a1', 'A@x.example', 'a@x.example', 'argon2-hash', CURRENT_TIMESTAMP)",
    "INSERT INTO workspace_admins (workspace_id, admin_id, created_at) "
    "VALUES ('w1', 'a1', CURRENT_TIMESTAMP)",
    "INSERT INTO console_sessions (id, token_hash, admin_id, created_at, expires_at) "
    "VALUES ('s1', 'h1', 'a1', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
]
COUNTS = "SELECT (SELECT count(*) FROM admins), (SELECT count(*) FROM workspace_admins), " + (
    "(SELECT count(*) FROM console_sessions)"
)
# Rows that name an account which is gone (SQLite runs migrations with foreign keys off).
ORPHANS = " + ".join(
    f"(SELECT count(*) FROM {table} WHERE admin_id NOT IN (SELECT id FROM admins))"
    for table in ("workspace_admins", "console_sessions")
)
# An invited account without a password, with a workspace, a session and a set-password link.
PENDING = [
    "INSERT INTO admins (id, email, email_lower, created_at) VALUES ('a2', 'b@x.example', 'b@x.example', "
    "CURRENT_TIMESTAMP)",
    "INSERT INTO workspace_admins (workspace_id, admin_id, created_at, added_by) "
    "VALUES ('w1', 'a2', CURRENT_TIMESTAMP, 'A@x.example (console)')",
    "INSERT INTO console_sessions (id, token_hash, admin_id, created_at, expires_at) "
    "VALUES ('s2', 'h2', 'a2', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO admin_password_tokens (id, admin_id, token_hash, created_by, created_at, expires_at) "
    "VALUES ('t2', 'a2', 'th2', 'A@x.example (console)', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
]


def _inspect(sync: Connection) -> tuple[set[str], bool, set[str], tuple[int, ...]]:
    names = set(inspect(sync).get_table_names())
    password = next(c for c in inspect(sync).get_columns("admins") if c["name"] == "password_hash")
    granted = {c["name"] for c in inspect(sync).get_columns("workspace_admins")}
    counts = (*sync.execute(text(COUNTS)).one(), sync.execute(text("SELECT " + ORPHANS)).scalar_one())
    return names, bool(password["nullable"]), granted, counts


def _run(url: str, statements: list[str]) -> tuple[set[str], bool, set[str], tuple[int, ...]]:
    if statements:
        execute(url, statements)
    return read(url, _inspect)


def _round_trip(url: str) -> None:
    upgrade_to(url, "0010")
    _run(url, SEED)
    upgrade_to(url)
    tables, nullable, granted, counts = _run(url, [])
    assert "admin_password_tokens" in tables and nullable and "added_by" in granted
    assert counts == (1, 1, 1, 0)
    # An invited account without a password, then back down: it cannot survive NOT NULL, and neither
    # can its workspace, its session or its link; the rest does.
    assert _run(url, PENDING)[3] == (2, 2, 2, 0)
    downgrade_to(url, "0010")
    tables, nullable, granted, counts = _run(url, [])
    assert "admin_password_tokens" not in tables and not nullable and "added_by" not in granted
    assert counts == (1, 1, 1, 0)
    upgrade_to(url)
    assert _run(url, [])[3] == (1, 1, 1, 0)


async def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    await round_trip_on_fresh_database(database_url, tmp_path, _round_trip)
