"""What the Members page shows, gathered from the domain services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.console.sessions import SignedIn
from provisio.console.workspace_forms import WORKSPACE, Pager
from provisio.db.models import Member, Workspace
from provisio.domain import console_members as member_service
from provisio.domain import seats as seat_service
from provisio.domain.host_events import ADMIN, Actor

PAGE = WORKSPACE + "/members"

# notice key -> message; {member} is the userName of the member the form changed.
NOTICES = {
    "added": "Added {member}. They use one seat.",
    "deactivated": (
        "Deactivated {member}. They can no longer sign in, their seat is free, and their data is kept."
    ),
    "reactivated": "Reactivated {member}. They use a seat again.",
    "unchanged": "Nothing to change: {member} already had that status.",
}

STATUSES = [
    ("", "All"),
    (member_service.STATUS_ACTIVE, "Active"),
    (member_service.STATUS_DEACTIVATED, "Deactivated"),
    (member_service.STATUS_REMOVED, "Removed"),
]

# What each confirmation says before the change is made (the forms work without JavaScript).
CONFIRM = {
    "deactivate": (
        "Deactivate {member}?",
        "{member} will no longer be able to sign in and their seat is freed. Their data is kept, and you "
        "can reactivate them later if a seat is free.",
        "Deactivate",
    ),
    "reactivate": (
        "Reactivate {member}?",
        "{member} will be able to sign in again and will use a seat (bought automatically if license "
        "auto-charge is on and no seat is free).",
        "Reactivate",
    ),
}


def console_actor(who: SignedIn) -> str:
    """How the ledger and the provisioning rules name an admin acting in the console."""
    return f"{who.email} (console)"


def console_event_actor(who: SignedIn) -> Actor:
    """How the host events name an admin acting in the console."""
    return Actor(ADMIN, who.admin_id, who.email)


@dataclass(frozen=True)
class MemberRow:
    id: str
    name: str
    user_name: str
    email: str
    external_id: str
    active: bool
    removed: bool
    managed_by_idp: bool
    created: datetime
    modified: datetime
    changed_by: str


def _row(member: Member, changed_by: dict[str, str]) -> MemberRow:
    parts = [p for p in (member.given_name, member.family_name) if p]
    name = member.display_name or " ".join(parts)
    return MemberRow(
        id=member.id,
        name=name,
        user_name=member.user_name,
        email=member.email_lower or "",
        external_id=member.external_id or "",
        active=bool(member.active),
        removed=member.deleted_at is not None,
        managed_by_idp=bool(member.provisioned_by_scim),
        created=member.created_at,
        modified=member.modified_at,
        changed_by=changed_by.get(member.id, ""),
    )


async def members_page_context(
    session: AsyncSession,
    workspace: Workspace,
    *,
    q: str = "",
    status: str = "",
    page: int = 1,
    notice: str | None = None,
    member: str | None = None,
    error: str | None = None,
    error_field: str | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status = status if status in dict(STATUSES) else ""
    q = " ".join(q.split())[:200]
    path = PAGE.format(workspace_key=workspace.key)
    pager = Pager(page, member_service.PAGE_SIZE, 0, path, [("q", q), ("status", status)])
    found = await member_service.search(
        session, workspace, text=q, status=status or None, offset=pager.offset, limit=pager.size
    )
    if not found.members and found.total and page > 1:  # past the end (e.g. after a filter change)
        pager = Pager(1, pager.size, found.total, path, pager.query)
        found = await member_service.search(
            session, workspace, text=q, status=status or None, offset=0, limit=pager.size
        )
    pager = Pager(pager.number, pager.size, found.total, path, pager.query)
    changed_by = await member_service.last_changed_by(session, workspace, [m.id for m in found.members])
    return {
        "workspace": workspace,
        "nav_current": "members",
        "usage": await seat_service.usage(session, workspace),
        "members": [_row(m, changed_by) for m in found.members],
        "pager": pager,
        "q": q,
        "status": status,
        "statuses": STATUSES,
        "notice": await _notice(session, workspace, notice, member),
        "error": error,
        "error_field": error_field,
        "values": values or {},
        "page_path": path,
    }


async def _notice(
    session: AsyncSession, workspace: Workspace, notice: str | None, member_id: str | None
) -> str | None:
    """The notice naming the member changed; only a member of this workspace is named."""
    message = NOTICES.get(notice or "")
    name = await member_service.user_name_of(session, workspace, member_id) if message and member_id else None
    return message.format(member=name) if message and name else None
