"""What the Admins page shows: the workspace's admins, the notice after a change, and the confirmation
text of *Remove*. Every rule lives in ``domain.workspace_admins``."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.console.workspace_forms import WORKSPACE
from provisio.db.models import Workspace
from provisio.domain import workspace_admins as admin_service
from provisio.domain.errors import DomainError

PAGE = WORKSPACE + "/admins"
INVITE_COOKIE = "provisio_invite"  # the one-time set-password link (see ``console.reveal``)
INVITE = "invite"  # its kind of reveal payload

# notice key -> message; {admin} is the e-mail of the admin the form changed, {workspace} the name.
NOTICES = {
    "invited": (
        "Added {admin} as an admin of {workspace}. They choose a password with their one-time "
        "set-password link, which works for 72 hours; it has been e-mailed to them."
    ),
    "granted": "{admin} is now an admin of {workspace} and signs in with the password they already have.",
    "granted-mailed": (
        "{admin} is now an admin of {workspace}. They have not set a password yet: they sign in once they "
        "have set it with the one-time link e-mailed to them (their account belongs to another workspace "
        "too, so the link is not shown here)."
    ),
    "removed": "Removed {admin}: they can no longer open the pages of {workspace}.",
}

CONFIRM_TITLE = "Remove {admin} as an admin?"
CONFIRM_MESSAGE = (
    "{admin} will at once no longer be able to open or change anything of {workspace}, in the console "
    "or through any page already open. Their account is kept, with any other workspace they administer, "
    "and you can add them again later."
)
CONFIRM_SELF = (
    "You will at once no longer be able to open or change anything of {workspace}: you are taken to your "
    "workspaces. Another admin can add you again."
)


def removal_tag(secret_key: str, workspace_id: str, email: str) -> str:
    """Signs the e-mail that the notice after a removal names, so the page names only an admin who was
    really removed from this workspace (the query string is not trusted)."""
    message = f"admin-removed:{workspace_id}:{email}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


async def admins_page_context(
    session: AsyncSession,
    workspace: Workspace,
    secret_key: str,
    *,
    who_id: str,
    notice: str | None = None,
    admin: str | None = None,
    tag: str | None = None,
    invite_url: str | None = None,
    invite_email: str | None = None,
    error: str | None = None,
    error_field: str | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    admins = await admin_service.list_admins(session, workspace.id)
    return {
        "workspace": workspace,
        "nav_current": "admins",
        "admins": admins,
        "who_id": who_id,
        "only_one": len(admins) <= 1,
        # Those who can sign in: the last of them cannot be removed while the others are only invited.
        "signing_in": sum(a.has_password for a in admins),
        "notice": await _notice(session, workspace, secret_key, notice, admin, tag),
        "invite_url": invite_url,
        "invite_email": invite_email,
        "error": error,
        "error_field": error_field,
        "values": values or {},
        "page_path": PAGE.format(workspace_key=workspace.key),
    }


async def _notice(
    session: AsyncSession,
    workspace: Workspace,
    secret_key: str,
    notice: str | None,
    admin: str | None,
    tag: str | None,
) -> str | None:
    """The notice naming the admin changed: for an addition an admin of this workspace (by id), for a
    removal the e-mail whose signature matches."""
    message = NOTICES.get(notice or "")
    if not message or not admin:
        return None
    if notice == "removed":
        expected = removal_tag(secret_key, workspace.id, admin)
        if not tag or not hmac.compare_digest(tag, expected):
            return None
        return message.format(admin=admin, workspace=workspace.name)
    try:
        found = await admin_service.workspace_admin(session, workspace.id, admin_id=admin)
    except DomainError:
        return None
    return message.format(admin=found.email, workspace=workspace.name)
