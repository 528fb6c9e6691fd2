"""Adding an admin by e-mail, with the set-password link e-mailed to the invited address itself.

The e-mail is enqueued in the transaction that issues the link (``domain.workspace_admins.add_admin``),
so the person gets it even if whoever added them never passes it on; the inviter sees the link once as
well, when the domain allows it (``AddedAdmin.shown``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.config import Settings
from provisio.db.models import Workspace
from provisio.domain import workspace_admins as admin_service
from provisio.domain.hashing import hash_secret
from provisio.notify.outbox import enqueue_mail
from provisio.notify.rendering import TEMPLATES


@dataclass(frozen=True)
class Invited:
    added: admin_service.AddedAdmin
    # The link, for the inviter to see once; None when none was issued or it is only e-mailed.
    shown_url: str | None
    mailed: bool  # a link was e-mailed to the added address


async def add_admin(
    session: AsyncSession, settings: Settings, workspace: Workspace, email: str, *, actor: str
) -> Invited:
    """``domain.workspace_admins.add_admin``, then the e-mail with the set-password link if one was
    issued, in the same transaction."""
    added = await admin_service.add_admin(session, workspace, email, actor=actor)
    if added.token is None:
        return Invited(added=added, shown_url=None, mailed=False)
    url = admin_service.set_password_url(settings.public_base, added.token)
    values = {
        "workspace": workspace,
        "email": added.email,
        "actor": actor,
        "url": url,
        "hours": int(admin_service.INVITE_TTL.total_seconds() // 3600),
        "console_url": settings.console_url,
    }
    await enqueue_mail(
        session,
        to=[added.email],
        subject=f"You are an admin of {' '.join(workspace.name.split())[:150]}: choose your password",
        text=TEMPLATES.get_template("invite.txt").render(values),
        html=TEMPLATES.get_template("invite.html").render(values),
        workspace_id=workspace.id,
        # One e-mail per link; the token's hash is what the database keeps of it anyway.
        dedupe_key="admin-invite:" + hash_secret(added.token),
        secret=True,
    )
    return Invited(added=added, shown_url=url if added.shown else None, mailed=True)
