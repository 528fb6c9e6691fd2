"""The provisioning log: every state change and every failure an IdP caused, per workspace."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import ProvisioningEvent

# A plain INSERT, not an ORM object: nothing reads the event back, and an ORM flush of one new row costs
# several times the statement (an event is written with every SCIM change).
_INSERT = insert(cast(Table, ProvisioningEvent.__table__))


async def record_event(
    session: AsyncSession,
    *,
    workspace_id: str,
    actor: str,
    action: str,
    outcome: str,
    status: int,
    member_id: str | None = None,
    user_name: str | None = None,
    detail: str | None = None,
) -> None:
    # The log must never be what fails: values a client sent are cut to their column's width.
    await session.execute(
        _INSERT,
        {
            "workspace_id": workspace_id,
            "actor": actor[:200],
            "action": action[:40],
            "outcome": outcome,
            "status": status,
            "member_id": member_id if member_id is None or len(member_id) <= 36 else None,
            "user_name": user_name[:512] if user_name else user_name,
            "detail": detail,
        },
    )
