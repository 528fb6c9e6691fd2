"""Helpers for the failure e-mail tests: failures as the SCIM API logs them, and the e-mails the
outbox holds for a workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import OutboxMessage
from provisio.domain.errors import Reason
from provisio.notify.failures import Failure, note_failure

# Failures happen at T0, a month ahead at 09:00: a worker's own flushes, on the real clock, must never
# end a test's windows before the test does.
T0 = (datetime.now(UTC) + timedelta(days=30)).replace(hour=9, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Mail:
    to: list[str]
    subject: str
    text: str
    html: str
    created_at: datetime


def per_user(workspace_id: str, user_name: str, seconds: float = 0, **extra: Any) -> Failure:
    """A create refused because the user's e-mail is outside the verified domains."""
    values: dict[str, Any] = {
        "operation": "create",
        "status": 400,
        "scim_type": "invalidValue",
        "detail": f"The e-mail domain other.example (of {user_name}) is not a verified domain.",
        "user_name": user_name,
        "at": T0 + timedelta(seconds=seconds),
        "reason_code": Reason.DOMAIN_NOT_VERIFIED,
    }
    values.update(extra)
    return Failure(workspace_id=workspace_id, **values)


def no_seat(workspace_id: str, user_name: str, seconds: float = 0) -> Failure:
    return Failure(
        workspace_id=workspace_id,
        operation="create",
        status=403,
        detail="No free seat in workspace Acme (5 of 5 used) and license auto-charge is off",
        user_name=user_name,
        at=T0 + timedelta(seconds=seconds),
        reason_code=Reason.NO_FREE_SEAT,
    )


async def note(db: Database, settings: Settings, failure: Failure) -> None:
    """Note a failure in a transaction of its own, as the failure's provisioning event is written."""
    async with db.writing() as session:
        await note_failure(session, failure, settings)


async def mails(db: Database, workspace_id: str) -> list[Mail]:
    """The workspace's failure e-mails in the outbox, oldest first."""
    async with db.reading() as session:
        rows = await session.execute(
            select(OutboxMessage.payload, OutboxMessage.created_at)
            .where(OutboxMessage.workspace_id == workspace_id, OutboxMessage.dedupe_key.like("failures:%"))
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
        found = []
        for payload, created_at in rows:
            value = orjson.loads(payload)
            found.append(Mail(value["to"], value["subject"], value["text"], value["html"], created_at))
        return found
