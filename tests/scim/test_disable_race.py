"""A SCIM write that authenticated before its workspace was disabled must not commit after the disable
(PostgreSQL, where writers do not queue on one database lock): each write path checks the workspace
row again under a lock the disable waits for."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text

from provisio.db.engine import Database
from provisio.db.models import HostEvent, Member
from provisio.domain import members
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError, Reason
from provisio.domain.events import Event
from provisio.domain.host_events import CLI_ACTOR, IDP, Actor
from tests.conftest import Tenant
from tests.domain.helpers import okta_user

pytestmark = pytest.mark.usefixtures("postgresql_only")
BY = Actor(IDP, "t", "IdP")


@pytest.fixture
def postgresql_only(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite writers queue on BEGIN IMMEDIATE: no interleaving")


async def _disable(db: Database, key: str) -> None:
    async with db.writing() as operator:  # POST /api/v1/workspaces/{key}/disable
        await workspace_service.disable_workspace(
            operator, await workspace_service.require_workspace(operator, key)
        )


async def _counts(db: Database, tenant: Tenant, event_type: str) -> tuple[int, int]:
    async with db.reading() as session:
        made = await session.scalar(
            select(func.count()).select_from(Member).where(Member.workspace_id == tenant.id)
        )
        events = await session.scalar(
            select(func.count())
            .select_from(HostEvent)
            .where(HostEvent.workspace_id == tenant.id, HostEvent.type == event_type)
        )
    return int(made or 0), int(events or 0)


async def _member(db: Database, tenant: Tenant) -> Member:
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        return await members.create_member(session, ws, okta_user(f"lin@{tenant.key}.test"), by=BY)


async def test_a_create_racing_a_disable_is_refused_under_the_workspace_lock(
    db: Database, tenant: Tenant
) -> None:
    with pytest.raises(DomainError) as refused:
        async with db.writing() as scim:
            # What SCIM's write transaction has done by the time it creates: authenticated, and seen
            # the workspace enabled.
            ws = await workspace_service.require_workspace(scim, tenant.key)
            assert ws.disabled_at is None
            await _disable(db, tenant.key)
            await members.create_member(scim, ws, okta_user(f"ada@{tenant.key}.test"), by=BY)
    assert refused.value.reason == Reason.WORKSPACE_DISABLED
    assert await _counts(db, tenant, "member.created") == (0, 0)


async def test_a_delete_racing_a_disable_is_refused(db: Database, tenant: Tenant) -> None:
    created = await _member(db, tenant)
    with pytest.raises(DomainError) as refused:
        async with db.writing() as scim:
            ws = await workspace_service.require_workspace(scim, tenant.key)
            member = await members.get_member(scim, ws, created.id, lock=True)
            await _disable(db, tenant.key)
            await members.delete_member(scim, ws, member, by=BY)
    assert refused.value.reason == Reason.WORKSPACE_DISABLED
    assert await _counts(db, tenant, "member.deleted") == (1, 0)


async def test_a_locked_replace_racing_a_disable_is_refused(db: Database, tenant: Tenant) -> None:
    created = await _member(db, tenant)
    with pytest.raises(DomainError) as refused:
        async with db.writing() as scim:
            ws = await workspace_service.require_workspace(scim, tenant.key)
            member = await members.get_member(scim, ws, created.id, lock=True)
            await _disable(db, tenant.key)
            await members.replace_member(scim, ws, member, {**member.doc, "title": "CTO"}, by=BY)
    assert refused.value.reason == Reason.WORKSPACE_DISABLED
    assert await _counts(db, tenant, "member.updated") == (1, 0)


def _replacement(tenant: Tenant, member: Member) -> tuple[members.Replacement, Event]:
    plan = members.plan_replacement(member, {**member.doc, "displayName": "Late"})
    assert plan.changed and plan.plain
    return plan, Event(tenant.id, "test", "patch", "success", 200, member.id, member.user_name)


async def test_the_one_statement_replace_writes_nothing_once_the_workspace_is_disabled(
    db: Database, tenant: Tenant
) -> None:
    created = await _member(db, tenant)
    async with db.autocommit() as scim:
        ws = await workspace_service.require_workspace(scim, tenant.key)
        member = await members.get_member(scim, ws, created.id)
        plan, event = _replacement(tenant, member)
        await _disable(db, tenant.key)
        applied = await members.replace_member_if_current(scim, ws, member, plan, event, by=CLI_ACTOR)
    assert applied is False
    assert await _counts(db, tenant, "member.updated") == (1, 0)


async def _waiting_on_a_lock(db: Database) -> None:
    """Until some other session of this database waits for a lock (bounded)."""
    for _ in range(500):
        async with db.reading() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no session waited for the lock")


async def test_the_one_statement_replace_waits_for_a_disable_in_flight_and_then_writes_nothing(
    db: Database, tenant: Tenant
) -> None:
    created = await _member(db, tenant)
    async with db.autocommit() as scim:
        ws = await workspace_service.require_workspace(scim, tenant.key)
        member = await members.get_member(scim, ws, created.id)
        plan, event = _replacement(tenant, member)
        async with db.writing() as operator:
            await workspace_service.disable_workspace(
                operator, await workspace_service.require_workspace(operator, tenant.key)
            )
            replace = asyncio.ensure_future(
                members.replace_member_if_current(scim, ws, member, plan, event, by=CLI_ACTOR)
            )
            await _waiting_on_a_lock(db)
            assert not replace.done()
        assert await replace is False
    assert await _counts(db, tenant, "member.updated") == (1, 0)


async def test_a_disable_waits_for_a_write_that_checked_the_workspace(db: Database, tenant: Tenant) -> None:
    created = await _member(db, tenant)
    async with db.writing() as scim:
        ws = await workspace_service.require_workspace(scim, tenant.key)
        member = await members.get_member(scim, ws, created.id, lock=True)
        await members.replace_member(scim, ws, member, {**member.doc, "title": "CTO"}, by=BY)
        disable = asyncio.ensure_future(_disable(db, tenant.key))
        await _waiting_on_a_lock(db)
        assert not disable.done()
    await disable
    assert await _counts(db, tenant, "member.updated") == (1, 1)
