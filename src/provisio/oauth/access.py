"""Resource-server side: is this access token good for this workspace's SCIM API right now?"""

from __future__ import annotations

from sqlalchemy import ScalarSelect, bindparam, select

from provisio.db.models import OAuthClient, OAuthToken, UTCDateTime, Workspace


def access_token_client() -> ScalarSelect[str]:
    """The client ID behind the access token whose hash is bound as ``token_hash`` when it is live and
    unexpired at ``now`` and was issued to the workspace's current client for its current method (NULL
    otherwise): a subquery correlated to ``workspaces``, so authenticating a SCIM request is one
    statement, built once."""
    return (
        select(OAuthClient.client_id)
        .select_from(OAuthToken)
        .join(OAuthClient, OAuthClient.id == OAuthToken.client_pk)
        .where(
            OAuthToken.access_token_hash == bindparam("token_hash"),
            OAuthToken.workspace_id == Workspace.id,
            OAuthToken.revoked_at.is_(None),
            OAuthToken.access_expires_at > bindparam("now", type_=UTCDateTime),
            OAuthClient.revoked_at.is_(None),
            OAuthClient.grant_method == Workspace.scim_auth_method,
        )
        .correlate(Workspace)
        .limit(1)
        .scalar_subquery()
    )
