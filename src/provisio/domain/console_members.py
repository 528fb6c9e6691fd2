"""Members as workspace admins see them in the console: search (members removed by SCIM ``DELETE``
too), who last changed each, members added by hand, and the deactivation of those. Writes go through
``provisio.domain.members`` (``create_member`` and ``replace_member``), so a member added or reactivated
here obeys every rule SCIM does: a verified e-mail domain, one workspace per person, and a seat."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Member, ProvisioningEvent, Workspace
from provisio.domain import domains, events, members
from provisio.domain.errors import DomainError, Kind
from provisio.domain.host_events import Actor
from provisio.domain.workspace_state import ensure_changeable

PAGE_SIZE = 25
STATUS_ACTIVE = "active"
STATUS_DEACTIVATED = "deactivated"
STATUS_REMOVED = "removed"  # deleted by the IdP (SCIM DELETE): invisible to SCIM, the row is kept
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


async def search(
    session: AsyncSession,
    workspace: Workspace,
    *,
    text: str = "",
    status: str | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> members.Page:
    """Members whose userName, name or e-mail contains ``text`` (ignoring case), by userName."""
    conditions: list[ColumnElement[bool]] = []
    needle = " ".join(text.split()).lower()
    if needle:
        full_name = func.coalesce(Member.given_name, "") + " " + func.coalesce(Member.family_name, "")
        columns: list[Any] = [
            Member.user_name_lower,
            func.coalesce(Member.email_lower, ""),
            func.lower(func.coalesce(Member.display_name, ""), type_=String),
            func.lower(full_name, type_=String),
        ]
        conditions.append(or_(*(column.contains(needle, autoescape=True) for column in columns)))
    order_by = [Member.user_name_lower.asc(), Member.id.asc()]
    if status == STATUS_REMOVED:
        return await _removed(session, workspace, conditions, order_by, max(offset, 0), limit)
    if status == STATUS_ACTIVE:
        conditions.append(Member.active.is_(True))
    elif status == STATUS_DEACTIVATED:
        conditions.append(Member.active.is_(False))
    return await members.list_members(
        session,
        workspace,
        where=and_(*conditions) if conditions else None,
        order_by=order_by,
        offset=max(offset, 0),
        limit=limit,
    )


async def _removed(
    session: AsyncSession,
    workspace: Workspace,
    conditions: list[ColumnElement[bool]],
    order_by: Sequence[ColumnElement[Any]],
    offset: int,
    limit: int,
) -> members.Page:
    """The removed members matching ``conditions`` (``members.list_members`` lists the live ones)."""
    where = and_(Member.workspace_id == workspace.id, Member.deleted_at.is_not(None), *conditions)
    rows = await session.execute(select(Member).where(where).order_by(*order_by).offset(offset).limit(limit))
    found = list(rows.scalars())
    total = await session.execute(select(func.count()).select_from(Member).where(where))
    return members.Page(total=int(total.scalar_one()), members=found, keys=[None] * len(found))


async def last_changed_by(
    session: AsyncSession, workspace: Workspace, member_ids: list[str]
) -> dict[str, str]:
    """Who made the newest successful change to each of ``member_ids`` (an IdP client, or an admin in
    the console), from the provisioning log: one query for a whole page of members."""
    if not member_ids:
        return {}
    newest = (
        select(
            ProvisioningEvent.member_id,
            ProvisioningEvent.actor,
            func.row_number()
            .over(partition_by=ProvisioningEvent.member_id, order_by=ProvisioningEvent.id.desc())
            .label("rank"),
        )
        .where(
            ProvisioningEvent.workspace_id == workspace.id,
            ProvisioningEvent.member_id.in_(member_ids),
            ProvisioningEvent.outcome == events.SUCCESS,
        )
        .subquery()
    )
    rows = await session.execute(select(newest.c.member_id, newest.c.actor).where(newest.c.rank == 1))
    return {member_id: actor for member_id, actor in rows}


def _invalid_address(raw: str) -> DomainError:
    return DomainError(Kind.INVALID, f"{raw.strip()!r} is not an e-mail address: use name@example.com.")


async def add_member(
    session: AsyncSession, workspace: Workspace, *, email: str, name: str, actor: str, by: Actor
) -> Member:
    """A member added by an admin rather than by an identity provider (``provisioned_by_scim`` false)."""
    ensure_changeable(workspace)
    address = email.strip()
    local, at, domain = address.rpartition("@")
    if not (local and at) or any(c.isspace() for c in address):
        raise _invalid_address(email)
    try:
        domains.normalise_domain(domain)
    except DomainError:
        raise _invalid_address(email) from None
    display = " ".join(name.split())
    if not display:
        raise DomainError(Kind.INVALID, "Give the member's name.")
    taken = await session.execute(
        select(Member.id)
        .where(
            Member.workspace_id == workspace.id,
            Member.user_name_lower == address.lower(),
            Member.deleted_at.is_(None),
        )
        .limit(1)
    )
    if taken.first() is not None:
        raise DomainError(Kind.CONFLICT, f"{address} is already a member of this workspace.")
    doc: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "userName": address,
        "name": {"formatted": display},
        "displayName": display,
        "emails": [{"value": address, "type": "work", "primary": True}],
        "active": True,
    }
    member = await members.create_member(session, workspace, doc, actor=actor, by=by)
    member.provisioned_by_scim = False
    await session.flush()
    await _log(session, workspace, member, actor, "create", 201)
    return member


async def _log(
    session: AsyncSession, workspace: Workspace, member: Member, actor: str, action: str, status: int
) -> None:
    """Changes made in the console go to the provisioning log like the IdP's, so that it (and the
    page's "last changed by") tells who changed a member last."""
    await events.record_event(
        session,
        workspace_id=workspace.id,
        actor=actor,
        action=action,
        outcome=events.SUCCESS,
        status=status,
        member_id=member.id,
        user_name=member.user_name,
    )


def managed_by_idp(member: Member) -> DomainError:
    return DomainError(
        Kind.FORBIDDEN,
        f"{member.user_name} is managed by your identity provider (provisioned through SCIM), so it cannot "
        "be changed here: deactivate or unassign them in your identity provider, which tells provisio.",
    )


async def editable_member(
    session: AsyncSession, workspace: Workspace, member_id: str, *, lock: bool = False
) -> Member:
    """A member the console may change: added by hand (members provisioned by SCIM belong to the IdP)."""
    member = await members.get_member(session, workspace, member_id, lock=lock)
    if member.provisioned_by_scim:
        raise managed_by_idp(member)
    return member


async def set_active(
    session: AsyncSession, workspace: Workspace, member_id: str, active: bool, *, actor: str, by: Actor
) -> bool:
    """Deactivate (frees the seat, keeps the data) or reactivate (takes a seat under the SCIM rules) a
    member added by hand. Returns whether it changed."""
    ensure_changeable(workspace)
    member = await editable_member(session, workspace, member_id, lock=True)
    if bool(member.active) == active:
        return False
    doc = copy.deepcopy(member.doc)
    doc["active"] = active
    changed = await members.replace_member(session, workspace, member, doc, actor=actor, by=by)
    if changed:
        await _log(session, workspace, member, actor, "reactivate" if active else "deactivate", 200)
    return changed


async def user_name_of(session: AsyncSession, workspace: Workspace, member_id: str) -> str | None:
    """The userName of one of the workspace's members, removed ones included (for the page's notices)."""
    query = select(Member.user_name).where(Member.workspace_id == workspace.id, Member.id == member_id)
    return (await session.execute(query)).scalar_one_or_none()
