"""Sign-in links in the domain: the clock (injected, no waiting five minutes), spent links pruned, the
account made once even when two workspaces' links for a new address are opened at the same moment, and
the migration's round trip."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select

from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from provisio.db.models import Admin, Base, PortalLink, Workspace, WorkspaceAdmin, utcnow
from provisio.domain import api_keys, portal_links
from provisio.domain import workspace_admins as admin_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.portal_links import LINK_TTL, LinkRefused, Refusal
from tests import migrations


async def setup(db: Database) -> tuple[Workspace, int]:
    async with db.writing() as session:
        ws = await workspace_service.create_workspace(session, f"Portal {uuid.uuid4().hex[:6]}")
        key = await api_keys.create_key(session, "host app")
    return ws, key.id


def address() -> str:
    return f"pat-{uuid.uuid4().hex[:8]}@portal.example"


async def link(db: Database, ws: Workspace, key_id: int, email: str, **kw: Any) -> portal_links.IssuedLink:
    async with db.writing() as session:
        return await portal_links.create_link(
            session, ws, email, return_url=None, allowed=(), api_key_id=key_id, **kw
        )


async def open_at(db: Database, token: str, **kw: Any) -> portal_links.OpenedLink:
    async with db.writing() as session:
        return await portal_links.open_link(session, token, **kw)


async def test_the_link_expires_after_five_minutes(db: Database) -> None:
    ws, key_id = await setup(db)
    t0 = utcnow()
    issued = await link(db, ws, key_id, address(), now=t0)
    assert issued.expires_at == t0 + LINK_TTL == t0 + timedelta(minutes=5)
    with pytest.raises(LinkRefused) as refused:
        await open_at(db, issued.token, now=t0 + LINK_TTL)
    assert refused.value.refusal is Refusal.EXPIRED
    # The refusal wrote nothing: a moment earlier the link still works, once.
    opened = await open_at(db, issued.token, now=t0 + LINK_TTL - timedelta(microseconds=1))
    assert opened.workspace_id == ws.id and opened.admin_created
    with pytest.raises(LinkRefused) as refused:
        await open_at(db, issued.token, now=t0 + timedelta(minutes=1))
    assert refused.value.refusal is Refusal.USED


async def test_spent_links_are_kept_a_day_then_pruned(db: Database) -> None:
    ws, key_id = await setup(db)
    t0 = utcnow()
    old = await link(db, ws, key_id, address(), now=t0 - timedelta(days=2))
    recent = await link(db, ws, key_id, address(), now=t0 - timedelta(hours=2))
    await link(db, ws, key_id, address(), now=t0)
    with pytest.raises(LinkRefused) as refused:
        await open_at(db, old.token, now=t0)
    assert refused.value.refusal is Refusal.UNKNOWN
    with pytest.raises(LinkRefused) as refused:
        await open_at(db, recent.token, now=t0)
    assert refused.value.refusal is Refusal.EXPIRED


async def test_a_new_address_is_one_account_when_two_workspaces_open_links_at_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL both transactions look the account up before either creates it (held at a
    barrier), so the second trips the unique e-mail and must find the first's account instead. SQLite
    queues writers, so there they simply run one after the other."""
    (a, key_id), (b, _) = await setup(db), await setup(db)
    email = address()
    first, second = await link(db, a, key_id, email), await link(db, b, key_id, email)
    looked_up = 0
    both_looked = asyncio.Event()
    real = admin_service._locked_account

    async def held(session: Any, wanted: str) -> Admin | None:
        nonlocal looked_up
        found = await real(session, wanted)
        looked_up += 1
        if looked_up >= 2:
            both_looked.set()
        elif db.dialect == "postgresql":
            await asyncio.wait_for(both_looked.wait(), 10)
        return found

    monkeypatch.setattr(admin_service, "_locked_account", held)
    opened = await asyncio.gather(open_at(db, first.token), open_at(db, second.token))
    assert opened[0].admin_id == opened[1].admin_id
    assert sorted(o.admin_created for o in opened) == [False, True]
    async with db.reading() as session:
        accounts = await session.scalar(
            select(func.count()).select_from(Admin).where(Admin.email_lower == email)
        )
        granted = set(
            (
                await session.execute(
                    select(WorkspaceAdmin.workspace_id).where(WorkspaceAdmin.admin_id == opened[0].admin_id)
                )
            ).scalars()
        )
    assert accounts == 1 and granted == {a.id, b.id}


async def test_the_link_row_never_holds_the_token(db: Database) -> None:
    ws, key_id = await setup(db)
    issued = await link(db, ws, key_id, address())
    async with db.reading() as session:
        rows = list(
            (await session.execute(select(PortalLink).where(PortalLink.workspace_id == ws.id))).scalars()
        )
    assert len(rows) == 1
    assert issued.token not in repr(issued)
    assert all(issued.token not in str(v) for v in vars(rows[0]).values())


# --- the migration ----------------------------------------------------------------------------------------

OURS = ("portal_links", "console_sessions")


def _inspect(url: str) -> tuple[set[str], set[str], list[Any]]:
    def read(sync: Any) -> tuple[set[str], set[str], list[Any]]:
        diffs = compare_metadata(MigrationContext.configure(sync), Base.metadata)
        columns = {c["name"] for c in inspect(sync).get_columns("console_sessions")}
        ours = [d for d in diffs if any(t in str(d) for t in OURS)]
        return set(inspect(sync).get_table_names()), columns, ours

    return migrations.read(url, read)


def _round_trip(url: str) -> None:
    upgrade(url)
    tables, columns, diffs = _inspect(url)
    assert "portal_links" in tables and {"workspace_id", "return_url"} <= columns and diffs == []
    migrations.downgrade_to(url, "0018")
    tables, columns, _ = _inspect(url)
    assert "portal_links" not in tables and not {"workspace_id", "return_url"} & columns
    upgrade(url)
    assert _inspect(url)[2] == []


async def test_upgrade_downgrade_upgrade(database_url: str, tmp_path: Path) -> None:
    await migrations.round_trip_on_fresh_database(database_url, tmp_path, _round_trip)
