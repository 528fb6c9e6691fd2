"""Resource-server side: is this access token good for this workspace's SCIM API right now?"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import OAuthClient, OAuthToken, Workspace, utcnow
from provisio.domain.scim_credentials import hash_secret


async def access_token_valid(
    session: AsyncSession, workspace: Workspace, token: str, now: datetime | None = None
) -> bool:
    """True for a live, unexpired token issued to this workspace's current client for its current method."""
    result = await session.execute(
        select(OAuthToken.id)
        .join(OAuthClient, OAuthClient.id == OAuthToken.client_pk)
        .where(
            OAuthToken.access_token_hash == hash_secret(token),
            OAuthToken.workspace_id == workspace.id,
            OAuthToken.revoked_at.is_(None),
            OAuthToken.access_expires_at > (now or utcnow()),
            OAuthClient.revoked_at.is_(None),
            OAuthClient.grant_method == workspace.scim_auth_method,
        )
    )
    return result.first() is not None
