"""Who is calling: a bearer token (RFC 6750) resolved to exactly one workspace.

A token of workspace A is refused on workspace B's tenant URL exactly like an unknown token, so a
caller learns nothing about other tenants.
"""

from __future__ import annotations

from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import ScimToken, Workspace
from provisio.domain.tokens import hash_token
from provisio.scim.errors import ScimError

REALM = "provisio SCIM"


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
            "Authentication required: send the workspace's SCIM credential as 'Authorization: Bearer <token>'."
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "Unsupported authorization scheme: use 'Authorization: Bearer <token>'.", "invalid_request"
        )
    return token


async def authenticate(db: Database, workspace_key: str, authorization: str | None) -> Workspace:
    token = bearer_token(authorization)
    async with db.reading() as session:
        workspace = (
            await session.execute(
                select(Workspace)
                .join(ScimToken, ScimToken.workspace_id == Workspace.id)
                .where(
                    Workspace.key == workspace_key,
                    ScimToken.token_hash == hash_token(token),
                    ScimToken.revoked_at.is_(None),
                )
            )
        ).scalar_one_or_none()
    if workspace is None:
        raise Unauthorized(
            "The access token is invalid, expired or revoked, or it belongs to another workspace. Check the "
            "Tenant URL and the credentials in Workspace settings > Advanced > SCIM.",
            "invalid_token",
        )
    if not workspace.scim_enabled:
        raise Unauthorized(
            "SCIM provisioning is turned off for this workspace. An admin can turn it on in Workspace "
            "settings > Advanced > SCIM.",
            "invalid_token",
        )
    return workspace
