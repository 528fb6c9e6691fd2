"""What *Generate Credentials* issues: an OAuth client (client ID + secret) or, for the legacy method, a
bearer token. Secrets are shown once and stored only as SHA-256; regenerating revokes the previous
credentials and every token issued with them at once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import OAuthAuthorizationCode, OAuthClient, OAuthToken, ScimToken, Workspace, utcnow
from provisio.domain import tokens as token_service
from provisio.domain.domains import require_verified_domain_for_scim
from provisio.domain.errors import DomainError, Kind
from provisio.domain.hashing import hash_secret
from provisio.domain.scim_methods import OAUTH_METHODS, ScimMethod

CLIENT_ID_PREFIX = "pvc_"
CLIENT_SECRET_PREFIX = "pvcs_"


@dataclass(frozen=True)
class IssuedCredentials:
    method: ScimMethod
    client_id: str | None = None
    client_secret: str | None = None
    token: str | None = None


async def live_client(session: AsyncSession, workspace_id: str) -> OAuthClient | None:
    result = await session.execute(
        select(OAuthClient)
        .where(OAuthClient.workspace_id == workspace_id, OAuthClient.revoked_at.is_(None))
        .order_by(OAuthClient.created_at.desc())
    )
    return result.scalars().first()


async def revoke_oauth(session: AsyncSession, workspace_id: str) -> None:
    """Revoke the workspace's OAuth clients, their tokens and their unused authorization codes."""
    now = utcnow()
    await session.execute(
        update(OAuthClient)
        .where(OAuthClient.workspace_id == workspace_id, OAuthClient.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(OAuthToken)
        .where(OAuthToken.workspace_id == workspace_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(OAuthAuthorizationCode)
        .where(OAuthAuthorizationCode.workspace_id == workspace_id, OAuthAuthorizationCode.used_at.is_(None))
        .values(used_at=now)
    )


async def revoke_bearer_tokens(session: AsyncSession, workspace_id: str) -> None:
    await session.execute(
        update(ScimToken)
        .where(ScimToken.workspace_id == workspace_id, ScimToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def has_live_bearer_token(session: AsyncSession, workspace_id: str) -> bool:
    result = await session.execute(
        select(ScimToken.id).where(ScimToken.workspace_id == workspace_id, ScimToken.revoked_at.is_(None))
    )
    return result.first() is not None


async def issue_bearer_token(
    session: AsyncSession, workspace: Workspace, label: str
) -> token_service.IssuedToken:
    """One more legacy bearer token, refused unless it would work now: SCIM on (which implies a verified
    domain) and ``bearer`` the workspace's method, so a token is never handed out only to be refused."""
    await require_verified_domain_for_scim(session, workspace)
    if not workspace.scim_enabled:
        raise DomainError(
            Kind.INVALID,
            f"SCIM provisioning is off for workspace {workspace.name}: turn it on in Workspace settings > "
            f"Advanced > SCIM (or `provisio scim configure {workspace.key} --method bearer`) first.",
        )
    if workspace.scim_auth_method != ScimMethod.BEARER.value:
        method = ScimMethod(workspace.scim_auth_method)
        raise DomainError(
            Kind.INVALID,
            f"Workspace {workspace.name} authenticates SCIM with {method.label}, "
            "which does not accept bearer tokens: issue its credentials with `provisio scim configure "
            f"{workspace.key} --method {workspace.scim_auth_method}`, or switch it to --method bearer.",
        )
    return await token_service.create_token(session, workspace, label)


async def generate_credentials(session: AsyncSession, workspace: Workspace) -> IssuedCredentials:
    """Issue fresh credentials for the workspace's method, revoking the previous ones (SCIM may still be
    off: the admin can prepare the identity provider first, but not before a domain is verified)."""
    await require_verified_domain_for_scim(session, workspace)
    method = ScimMethod(workspace.scim_auth_method)
    if method is ScimMethod.BEARER:
        await revoke_bearer_tokens(session, workspace.id)
        issued = await token_service.create_token(session, workspace, "Workspace settings")
        return IssuedCredentials(method=method, token=issued.token)
    if method not in OAUTH_METHODS:  # pragma: no cover - enum is closed
        raise DomainError(Kind.INVALID, f"Unknown SCIM method {method!r}.")
    await revoke_oauth(session, workspace.id)
    client_id = CLIENT_ID_PREFIX + secrets.token_urlsafe(18)
    client_secret = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
    session.add(
        OAuthClient(
            workspace_id=workspace.id,
            client_id=client_id,
            secret_hash=hash_secret(client_secret),
            grant_method=method.value,
        )
    )
    await session.flush()
    return IssuedCredentials(method=method, client_id=client_id, client_secret=client_secret)
