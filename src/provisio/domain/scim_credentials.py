"""What *Generate Credentials* issues: an OAuth client (client ID + secret) or, for the legacy method, a
bearer token. Secrets are shown once and stored only as SHA-256.

Regenerating an OAuth client keeps its client ID and replaces the secret, so the identity provider needs
only the new secret. With no rotation window the old secret and every token and code issued with it stop
at once (what a leaked secret needs); with a window the old secret is still accepted for client
authentication until the window ends, and tokens already issued run to their own expiry (what a planned
rotation needs: no gap while the IdP is updated). A bearer token is replaced the same way: revoked at
once, or still accepted until the window ends."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import OAuthAuthorizationCode, OAuthClient, OAuthToken, ScimToken, Workspace, utcnow
from provisio.domain import tokens as token_service
from provisio.domain.domains import require_verified_domain_for_scim
from provisio.domain.errors import DomainError, Kind
from provisio.domain.hashing import hash_secret
from provisio.domain.scim_methods import OAUTH_METHODS, ScimMethod
from provisio.domain.workspace_state import ensure_changeable

CLIENT_ID_PREFIX = "pvc_"
CLIENT_SECRET_PREFIX = "pvcs_"
HINT_LENGTH = 4


class RotationWindow(StrEnum):
    """How long a regenerated client secret's predecessor stays valid."""

    NONE = "none"
    HOUR = "1h"
    DAY = "24h"

    @property
    def duration(self) -> timedelta:
        return ROTATION_DURATIONS[self]


ROTATION_DURATIONS = {
    RotationWindow.NONE: timedelta(0),
    RotationWindow.HOUR: timedelta(hours=1),
    RotationWindow.DAY: timedelta(hours=24),
}


def parse_rotation_window(value: str) -> RotationWindow:
    try:
        return RotationWindow(value or RotationWindow.NONE.value)
    except ValueError:
        choices = ", ".join(w.value for w in RotationWindow)
        raise DomainError(Kind.INVALID, f"Unknown rotation window {value!r}: use {choices}.") from None


def secret_hint(secret: str) -> str:
    """The secret's last characters: enough to tell two secrets apart, far too few to guess one."""
    return secret[-HINT_LENGTH:]


def masked(prefix: str, hint: str | None) -> str:
    return f"{prefix}{'•' * 8}{hint or '••••'}"


@dataclass(frozen=True)
class PreviousSecret:
    """A replaced client secret still accepted until ``expires_at``."""

    masked: str
    expires_at: datetime


@dataclass(frozen=True)
class IssuedCredentials:
    method: ScimMethod
    client_id: str | None = None
    client_secret: str | None = None
    token: str | None = None


async def live_client(
    session: AsyncSession, workspace_id: str, *, for_update: bool = False
) -> OAuthClient | None:
    query = (
        select(OAuthClient)
        .where(OAuthClient.workspace_id == workspace_id, OAuthClient.revoked_at.is_(None))
        .order_by(OAuthClient.created_at.desc())
    )
    result = await session.execute(query.with_for_update() if for_update else query)
    return result.scalars().first()


def previous_secret(client: OAuthClient, now: datetime | None = None) -> PreviousSecret | None:
    expires_at = client.previous_secret_expires_at
    if client.previous_secret_hash is None or expires_at is None or expires_at <= (now or utcnow()):
        return None
    return PreviousSecret(masked(CLIENT_SECRET_PREFIX, client.previous_secret_hint), expires_at)


async def has_live_credentials(session: AsyncSession, workspace: Workspace) -> bool:
    """Whether the workspace's method has credentials an identity provider may be using now."""
    if ScimMethod(workspace.scim_auth_method) is ScimMethod.BEARER:
        return await has_live_bearer_token(session, workspace.id)
    client = await live_client(session, workspace.id)
    return client is not None and client.grant_method == workspace.scim_auth_method


async def revoke_oauth(session: AsyncSession, workspace_id: str) -> None:
    """Revoke the workspace's OAuth clients, their tokens and their unused authorization codes."""
    await session.execute(
        update(OAuthClient)
        .where(OAuthClient.workspace_id == workspace_id, OAuthClient.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await revoke_grants(session, workspace_id)


async def revoke_grants(session: AsyncSession, workspace_id: str) -> None:
    """Revoke the workspace's OAuth tokens and unused authorization codes (its clients stay)."""
    now = utcnow()
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


def _live_bearer(workspace_id: str, now: datetime) -> list[Any]:
    return [
        ScimToken.workspace_id == workspace_id,
        ScimToken.revoked_at.is_(None),
        or_(ScimToken.expires_at.is_(None), ScimToken.expires_at > now),
    ]


async def has_live_bearer_token(session: AsyncSession, workspace_id: str) -> bool:
    result = await session.execute(select(ScimToken.id).where(*_live_bearer(workspace_id, utcnow())))
    return result.first() is not None


async def issue_bearer_token(
    session: AsyncSession, workspace: Workspace, label: str
) -> token_service.IssuedToken:
    """One more legacy bearer token, refused unless it would work now: SCIM on (which implies a verified
    domain) and ``bearer`` the workspace's method, so a token is never handed out only to be refused."""
    ensure_changeable(workspace)
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


async def replaced_bearer_expiry(session: AsyncSession, workspace_id: str) -> datetime | None:
    """When the last bearer token replaced with a rotation window stops (None if none is pending)."""
    result = await session.execute(
        select(func.max(ScimToken.expires_at)).where(*_live_bearer(workspace_id, utcnow()))
    )
    return result.scalar_one_or_none()


async def _replace_bearer_tokens(session: AsyncSession, workspace_id: str, window: RotationWindow) -> None:
    if window is RotationWindow.NONE:
        await revoke_bearer_tokens(session, workspace_id)
        return
    now = utcnow()
    ends = now + window.duration
    await session.execute(
        update(ScimToken)
        .where(
            *_live_bearer(workspace_id, now), or_(ScimToken.expires_at.is_(None), ScimToken.expires_at > ends)
        )
        .values(expires_at=ends)
    )


async def generate_credentials(
    session: AsyncSession, workspace: Workspace, window: RotationWindow = RotationWindow.NONE
) -> IssuedCredentials:
    """Issue fresh credentials for the workspace's method, replacing the previous ones (an OAuth client
    keeps its client ID; its old secret, or the old bearer token, stays valid for ``window``). SCIM may
    still be off (the admin can prepare the identity provider first), but a domain must be verified."""
    ensure_changeable(workspace)
    await require_verified_domain_for_scim(session, workspace)
    method = ScimMethod(workspace.scim_auth_method)
    if method is ScimMethod.BEARER:
        await _replace_bearer_tokens(session, workspace.id, window)
        issued = await token_service.create_token(session, workspace, "Workspace settings")
        return IssuedCredentials(method=method, token=issued.token)
    if method not in OAUTH_METHODS:  # pragma: no cover - enum is closed
        raise DomainError(Kind.INVALID, f"Unknown SCIM method {method!r}.")
    client_secret = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
    # Locked: two regenerations at once must not both take the same secret as "the previous one".
    client = await live_client(session, workspace.id, for_update=True)
    if client is None or client.grant_method != method.value:
        await revoke_oauth(session, workspace.id)
        client = OAuthClient(
            workspace_id=workspace.id,
            client_id=CLIENT_ID_PREFIX + secrets.token_urlsafe(18),
            grant_method=method.value,
        )
        session.add(client)
    elif window is RotationWindow.NONE:
        await revoke_grants(session, workspace.id)
        client.previous_secret_hash = client.previous_secret_hint = client.previous_secret_expires_at = None
    else:
        client.previous_secret_hash = client.secret_hash
        client.previous_secret_hint = client.secret_hint
        client.previous_secret_expires_at = utcnow() + window.duration
    client.secret_hash = hash_secret(client_secret)
    client.secret_hint = secret_hint(client_secret)
    await session.flush()
    return IssuedCredentials(method=method, client_id=client.client_id, client_secret=client_secret)
