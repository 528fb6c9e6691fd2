"""The credential-rotation migration (previous client secrets, bearer token expiry, one-time reveals)
upgrades and downgrades on both databases, keeping the clients it finds."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, inspect, text

from tests.migrations import downgrade_to, execute, read, round_trip_on_fresh_database, upgrade_to


def _inspect(sync: Connection) -> tuple[set[str], set[str], int]:
    columns = {c["name"] for c in inspect(sync).get_columns("oauth_clients")}
    columns |= {f"scim_tokens.{c['name']}" for c in inspect(sync).get_columns("scim_tokens")}
    clients = sync.execute(text("SELECT count(*) FROM oauth_clients")).scalar_one()
    return set(inspect(sync).get_table_names()), columns, clients


def _schema(url: str) -> tuple[set[str], set[str], int]:
    return read(url, _inspect)


def _seed_client(url: str) -> None:
    execute(
        url,
        [
            "INSERT INTO workspaces (id, key, name, created_at, scim_enabled, seats_purchased, "
            "scim_auth_method, license_auto_charge, member_count, allow_other_domains) "
            "VALUES ('w1', 'w1', 'W', CURRENT_TIMESTAMP, false, 0, 'client_credentials', "
            "false, 0, false)",
            "INSERT INTO oauth_clients (id, workspace_id, client_id, secret_hash, grant_method, "
            "created_at) VALUES ('c1', 'w1', 'pvc_1', 'h', 'client_credentials', "
            "CURRENT_TIMESTAMP)",
        ],
    )


ADDED = {
    "secret_hint",
    "previous_secret_hash",
    "previous_secret_hint",
    "previous_secret_expires_at",
    "scim_tokens.expires_at",
}


def _round_trip(url: str) -> None:
    upgrade_to(url, "0008")
    _seed_client(url)
    upgrade_to(url)
    tables, columns, clients = _schema(url)
    assert "credential_reveals" in tables and columns >= ADDED and clients == 1
    downgrade_to(url, "0008")
    tables, columns, clients = _schema(url)
    assert "credential_reveals" not in tables and not ADDED & columns and clients == 1
    upgrade_to(url)
    tables, columns, _ = _schema(url)
    assert "credential_reveals" in tables and columns >= ADDED


async def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    await round_trip_on_fresh_database(database_url, tmp_path, _round_trip)
