"""Members as workspace admins see them in the console: search, members added by hand, and the
deactivation of those. Writes go through ``provisio.domain.members`` (``create_member`` and
``replace_member``), so a member added or reactivated here obeys every rule SCIM does: a verified
e-mail domain, one workspace per person, and a seat."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import ColumnElement, String, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Member, Workspace
from provisio.domain import domains, members
from provisio.domain.errors import DomainError, Kind

PAGE_SIZE = 25
STATUS_ACTIVE = "active"
STATUS_DEACTIVATED = "deactivated"
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
    if status == STATUS_ACTIVE:
        conditions.append(Member.active.is_(True))
    elif status == STATUS_DEACTIVATED:
        conditions.append(Member.active.is_(False))
    return await members.list_members(
        session,
        workspace,
        where=and_(*conditions) if conditions else None,
        order_by=[Member.user_name_lower.asc(), Member.id.asc()],
        offset=max(offset, 0),
        limit=limit,
    )


def _invalid_address(raw: str) -> DomainError:
    return DomainError(Kind.INVALID, f"{raw.strip()!r} is not an e-mail address: use name@example.com.")


async def add_member(
    session: AsyncSession, workspace: Workspace, *, email: str, name: str, actor: str
) -> Member:
    """A member added by an admin rather than by an identity provider (``provisioned_by_scim`` false)."""
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
    member = await members.create_member(session, workspace, doc, actor=actor)
    member.provisioned_by_scim = False
    await session.flush()
    return member


def managed_by_idp(member: Member) -> DomainError:
    return DomainError(
        Kind.FORBIDDEN,
        f"{member.user_name} is managed by your identity provider (provisioned through SCIM), so it cannot "
        "be changed here: deactivate or unassign them in your identity provider, which tells provisio.",
    )


async def set_active(
    session: AsyncSession, workspace: Workspace, member_id: str, active: bool, *, actor: str
) -> bool:
    """Deactivate (frees the seat, keeps the data) or reactivate (takes a seat under the SCIM rules) a
    member added by hand; members provisioned by SCIM belong to the IdP. Returns whether it changed."""
    member = await members.get_member(session, workspace, member_id, lock=True)
    if member.provisioned_by_scim:
        raise managed_by_idp(member)
    if bool(member.active) == active:
        return False
    doc = copy.deepcopy(member.doc)
    doc["active"] = active
    return await members.replace_member(session, workspace, member, doc, actor=actor)
