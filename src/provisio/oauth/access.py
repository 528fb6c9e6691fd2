"""Resource-server side: is this access token good for this workspace's SCIM API right now?"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ScalarSelect, select

from provisio.db.models import OAuthClient, OAuthToken, Workspace, utcnow
from provisio.domain.hashing import hash_secret


def access_token_client(token: str, now: datetime | None = None) -> ScalarSelect[str]:
    """The client ID behind ``token`` when it is a live, unexpired access token issued to the workspace's
    current client for its current method (NULL otherwise): a subquery correlated to ``workspaces``, so
    that authenticating a SCIM request is one statement."""
    return (
        select(OAuthClient.client_id)
        .select_from(OAuthToken)
        .join(OAuthClient, OAuthClient.id == OAuthToken.client_pk)
        .where(
            OAuthToken.access_token_hash == hash_secret(token),
            OAuthToken.workspace_id == Workspace.id,
            OAuthToken.revoked_at.is_(None),
            OAuthToken.access_expires_at > (now or utcnow()),
            OAuthClient.revoked_at.is_(None),
            OAuthClient.grant_method == Workspace.scim_auth_method,
        )
        .correlate(Workspace)
        .limit(1)
        .scalar_subquery()
    )
