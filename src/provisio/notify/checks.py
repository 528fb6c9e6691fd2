"""A test e-mail to a workspace's admins: checks the whole path (outbox, worker, SMTP) end to end."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.config import Settings
from provisio.db.models import Workspace
from provisio.domain import admins as admin_service
from provisio.domain.errors import DomainError, Kind
from provisio.notify.outbox import enqueue_mail


@dataclass(frozen=True)
class TestMail:
    outbox_id: str
    recipients: list[str]


async def enqueue_test_mail(session: AsyncSession, workspace: Workspace, settings: Settings) -> TestMail:
    recipients = await admin_service.workspace_admin_emails(session, workspace.id)
    if not recipients:
        raise DomainError(
            Kind.NOT_FOUND, f"Workspace {workspace.key!r} has no admins to send a test e-mail to."
        )
    text = (
        f"This is a test e-mail from provisio for the workspace {workspace.name} ({workspace.key}).\n\n"
        "It went through the outbox and the worker: notifications about this workspace will reach you "
        f"the same way.\n\nConsole: {settings.console_url}\n"
    )
    html = (
        f"<p>This is a test e-mail from provisio for the workspace <strong>{escape(workspace.name)}</strong>"
        f" ({escape(workspace.key)}).</p><p>It went through the outbox and the worker: notifications about "
        f'this workspace will reach you the same way.</p><p><a href="{escape(settings.console_url)}">'
        "Open the console</a></p>"
    )
    outbox_id = await enqueue_mail(
        session,
        to=recipients,
        subject=f"provisio test e-mail for {' '.join(workspace.name.split())}",
        text=text,
        html=html,
        workspace_id=workspace.id,
    )
    assert outbox_id is not None  # recipients and no dedupe key: always enqueued
    return TestMail(outbox_id=outbox_id, recipients=recipients)
