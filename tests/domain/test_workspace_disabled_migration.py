"""The disabled-workspace migration upgrades and downgrades on both databases: it adds
``workspaces.disabled_at``, makes SCIM off the server default of ``scim_enabled`` (on before), and keeps
every workspace with what refers to it (SQLite copies the ``workspaces`` table to change a default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, inspect, text

from tests.migrations import (
    downgrade_to,
    execute,
    model_diff,
    read,
    round_trip_on_fresh_database,
    upgrade_to,
)

BEFORE = "0019"
SEED = [
    "INSERT INTO workspaces (id, key, name, created_at, scim_enabled, seats_purchased, scim_auth_method, "
    "license_auto_charge, member_count, allow_other_domains) VALUES ('w1', 'w1', 'W', CURRENT_TIMESTAMP, "
    "true, 3, 'client_credentials', false, 0, false)",
    "INSERT INTO oauth_clients (id, workspace_id, client_id, secret_hash, grant_method, created_at) "
    "VALUES ('c1', 'w1', 'pvc_1', 'h', 'client_credentials', CURRENT_TIMESTAMP)",
]


def _raw_workspace(key: str) -> str:
    """A workspace inserted by plain SQL that leaves ``scim_enabled`` to the database's default."""
    return (
        "INSERT INTO workspaces (id, key, name, created_at, seats_purchased, scim_auth_method, "
        f"license_auto_charge, member_count, allow_other_domains) VALUES ('{key}', '{key}', 'Raw', "
        "CURRENT_TIMESTAMP, 0, 'bearer', false, 0, false)"
    )


def _state(sync: Connection) -> dict[str, Any]:
    columns = {c["name"] for c in inspect(sync).get_columns("workspaces")}
    rows = sync.execute(text("SELECT key, scim_enabled FROM workspaces ORDER BY key")).all()
    clients = sync.execute(text("SELECT count(*) FROM oauth_clients WHERE workspace_id = 'w1'")).scalar_one()
    return {
        "columns": columns,
        "scim_enabled": {key: bool(enabled) for key, enabled in rows},
        "clients": clients,
        "diff": model_diff(sync, ["workspaces"], compare_server_default=True),
    }


def _round_trip(url: str) -> None:
    upgrade_to(url, BEFORE)
    execute(url, [*SEED, _raw_workspace("raw-before")])
    assert read(url, _state)["scim_enabled"]["raw-before"] is True  # the old default

    upgrade_to(url)
    execute(url, [_raw_workspace("raw-after")])
    state = read(url, _state)
    assert "disabled_at" in state["columns"]
    assert state["diff"] == []  # the schema is what the models declare, server defaults included
    assert state["scim_enabled"] == {"raw-after": False, "raw-before": True, "w1": True}
    assert state["clients"] == 1  # the table copy on SQLite deleted nothing that refers to a workspace
    enabled = "SELECT count(*) FROM workspaces WHERE disabled_at IS NULL"
    assert read(url, lambda sync: sync.execute(text(enabled)).scalar_one()) == 3  # none starts disabled

    execute(url, ["UPDATE workspaces SET disabled_at = CURRENT_TIMESTAMP WHERE key = 'w1'"])
    downgrade_to(url, BEFORE)
    execute(url, [_raw_workspace("raw-down")])
    state = read(url, _state)
    assert "disabled_at" not in state["columns"]
    assert state["scim_enabled"] == {"raw-after": False, "raw-before": True, "raw-down": True, "w1": True}
    assert state["clients"] == 1

    upgrade_to(url)
    state = read(url, _state)
    assert "disabled_at" in state["columns"] and state["diff"] == [] and state["clients"] == 1


async def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    await round_trip_on_fresh_database(database_url, tmp_path, _round_trip)
