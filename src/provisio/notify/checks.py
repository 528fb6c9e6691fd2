"""A test e-mail to those who get a workspace's failure e-mails: checks the whole path (outbox, worker,
SMTP) end to end, to the same recipients."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.config import Settings
from provisio.db.models import Workspace
from provisio.domain import notifications
from provisio.domain.errors import DomainError, Kind
from provisio.notify.outbox import enqueue_mail


@dataclass(frozen=True)
class TestMail:
    outbox_id: str
    recipients: list[str]


async def enqueue_test_mail(session: AsyncSession, workspace: Workspace, settings: Settings) -> TestMail:
    # The failure e-mails' recipients (admins and extra addresses, less those who opted out), so that
    # "the same way" below is true.
    recipients = await notifications.recipients(session, workspace.id)
    if not recipients:
        raise DomainError(
            Kind.NOT_FOUND,
            f"Workspace {workspace.key!r} has nobody to send a test e-mail to "
            "(no admins or extra addresses, or all of them opted out).",
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
    try:
        outbox_id = await enqueue_mail(
            session,
            to=recipients,
            subject=f"provisio test e-mail for {' '.join(workspace.name.split())}",
            text=text,
            html=html,
            workspace_id=workspace.id,
        )
    except ValueError as exc:
        # An address the outbox cannot send to (an admin account's e-mail is checked less strictly).
        raise DomainError(Kind.INVALID, f"Cannot send the test e-mail: {exc}.") from exc
    assert outbox_id is not None  # recipients and no dedupe key: always enqueued
    return TestMail(outbox_id=outbox_id, recipients=recipients)
