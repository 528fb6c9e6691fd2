"""The provisioning log: every state change and every failure an IdP caused, per workspace."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import ProvisioningEvent


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
    session.add(
        ProvisioningEvent(
            workspace_id=workspace_id,
            actor=actor,
            action=action,
            outcome=outcome,
            status=status,
            member_id=member_id,
            user_name=user_name,
            detail=detail,
        )
    )
