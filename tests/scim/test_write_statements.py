"""What a SCIM PUT and PATCH cost in SQL statements: the host event rides along without another round trip
on PostgreSQL (it is a CTE of the one optimistic statement) and adds one INSERT to SQLite's transaction.
A write path that grew a statement fails here before it shows in the benchmark."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from tests.conftest import Tenant
from tests.domain.helpers import PATCH, okta_patch_active, okta_user, unique_domain


@contextmanager
def _statements(app: Any) -> Iterator[list[str]]:
    """The SQL the app runs meanwhile, and each COMMIT."""
    seen: list[str] = []
    db = app.state.db
    # On PostgreSQL the reading engine is the writing one with other options, and shares its events.
    roots = {
        id(e.sync_engine): getattr(e.sync_engine, "_proxied", e.sync_engine)
        for e in (db.read_engine, db.write_engine)
    }
    engines = {id(e): e for e in roots.values()}

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    def commit(_conn: Any) -> None:
        seen.append("COMMIT")

    for engine in engines.values():
        event.listen(engine, "before_cursor_execute", capture)
        event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        for engine in engines.values():
            event.remove(engine, "before_cursor_execute", capture)
            event.remove(engine, "commit", commit)


def _shape(statements: list[str]) -> list[str]:
    """Each statement by what it does: ``SELECT``, ``UPDATE <table>``, ``INSERT INTO <table>``, ``WITH``."""
    shapes = []
    for statement in statements:
        words = statement.split()
        shapes.append(
            " ".join(words[:3] if words[0] == "INSERT" else words[:2] if words[0] == "UPDATE" else words[:1])
        )
    return shapes


async def test_a_put_and_a_patch_cost_no_more_statements(
    client: httpx.AsyncClient, tenant: Tenant, app: Any
) -> None:
    email = f"ada@{unique_domain()}"
    r = await client.post(f"{tenant.base}/Users", json=okta_user(email), headers=tenant.headers)
    url = f"{tenant.base}/Users/{r.json()['id']}"
    title = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "CEO"}]}
    requests = {
        "PUT": lambda: client.put(url, json={**okta_user(email), "title": "CTO"}, headers=tenant.headers),
        "PATCH": lambda: client.patch(url, json=title, headers=tenant.headers),
        "PATCH active": lambda: client.patch(url, json=okta_patch_active(False), headers=tenant.headers),
    }
    for name, send in requests.items():
        with _statements(app) as seen:
            r = await send()
        assert r.status_code == 200, r.text
        shape = _shape(seen)
        if app.state.db.dialect == "postgresql":
            # The credential and the member in one SELECT, then one statement in autocommit that updates
            # the member and inserts its provisioning event and its host event: no BEGIN, no COMMIT.
            assert shape == ["SELECT", "WITH"], (name, shape)
            assert "INSERT INTO host_events" in seen[1] and "INSERT INTO provisioning_events" in seen[1], name
        else:
            # One writer at a time: SELECT, UPDATE, the host event, the provisioning event, COMMIT.
            assert shape == [
                "SELECT",
                "UPDATE members",
                "INSERT INTO host_events",
                "INSERT INTO provisioning_events",
                "COMMIT",
            ], (name, shape)
