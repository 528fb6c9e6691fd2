"""Who is calling: a bearer token (RFC 6750) resolved to exactly one workspace.

A token of workspace A is refused on workspace B's tenant URL exactly like an unknown token, so a
caller learns nothing about other tenants.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.engine import Database
from provisio.db.models import ScimToken, Workspace
from provisio.domain.hashing import hash_secret
from provisio.domain.scim_methods import ScimMethod
from provisio.oauth.access import access_token_client
from provisio.scim.errors import ScimError

REALM = "provisio SCIM"


@dataclass(frozen=True)
class Caller:
    """An authenticated SCIM client: its workspace, and how the provisioning log and ledger name it."""

    workspace: Workspace
    actor: str


async def _caller_for_token(session: AsyncSession, workspace_key: str, token: str) -> Caller | None:
    """The caller if ``token`` is a live credential of the workspace's chosen method: an OAuth access
    token, or a legacy bearer token only while the workspace uses the bearer method."""
    workspace = (
        await session.execute(select(Workspace).where(Workspace.key == workspace_key))
    ).scalar_one_or_none()
    if workspace is None:
        return None
    if workspace.scim_auth_method != ScimMethod.BEARER.value:
        client_id = await access_token_client(session, workspace, token)
        return Caller(workspace, f"OAuth client {client_id}") if client_id else None
    legacy = (
        await session.execute(
            select(ScimToken.id, ScimToken.label).where(
                ScimToken.workspace_id == workspace.id,
                ScimToken.token_hash == hash_secret(token),
                ScimToken.revoked_at.is_(None),
            )
        )
    ).first()
    if legacy is None:
        return None
    return Caller(workspace, f"bearer token {legacy.label or legacy.id[:8]}")


class Unauthorized(ScimError):
    def __init__(self, detail: str, error: str | None = None) -> None:
        super().__init__(401, detail)
        challenge = f'Bearer realm="{REALM}"'
        if error:
            challenge += f', error="{error}"'
        self.challenge = challenge


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized(
            "Authentication required: send the workspace's SCIM credential as "
            "'Authorization: Bearer <token>'."
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "Unsupported authorization scheme: use 'Authorization: Bearer <token>'.", "invalid_request"
        )
    return token


async def authenticate(db: Database, workspace_key: str, authorization: str | None) -> Caller:
    token = bearer_token(authorization)
    async with db.reading() as session:
        caller = await _caller_for_token(session, workspace_key, token)
    if caller is None:
        raise Unauthorized(
            "The access token is invalid, expired or revoked, or it belongs to another workspace. Check the "
            "Tenant URL and the credentials in Workspace settings > Advanced > SCIM.",
            "invalid_token",
        )
    if not caller.workspace.scim_enabled:
        raise Unauthorized(
            "SCIM provisioning is turned off for this workspace. An admin can turn it on in Workspace "
            "settings > Advanced > SCIM.",
            "invalid_token",
        )
    return caller
