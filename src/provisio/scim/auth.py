"""Who is calling: a bearer token (RFC 6750) resolved to exactly one workspace.

A token of workspace A is refused on workspace B's tenant URL exactly like an unknown token, so a
caller learns nothing about other tenants.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import ScimToken, Workspace, utcnow
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


# Built once: statement construction costs more than running this indexed lookup.
_CALLER = (
    select(Workspace, ScimToken.id, ScimToken.label, access_token_client())
    .outerjoin(
        ScimToken,
        and_(
            ScimToken.workspace_id == Workspace.id,
            ScimToken.token_hash == bindparam("token_hash"),
            ScimToken.revoked_at.is_(None),
            Workspace.scim_auth_method == ScimMethod.BEARER.value,
        ),
    )
    .where(Workspace.key == bindparam("workspace_key"))
)


async def _caller_for_token(session: AsyncSession, workspace_key: str, token: str) -> Caller | None:
    """The caller if ``token`` is a live credential of the workspace's chosen method: an OAuth access
    token, or a legacy bearer token only while the workspace uses the bearer method. One statement:
    this runs before every SCIM request."""
    params = {"workspace_key": workspace_key, "token_hash": hash_secret(token), "now": utcnow()}
    row = (await session.execute(_CALLER, params)).first()
    if row is None:
        return None
    workspace, token_id, label, client_id = row
    if client_id is not None:
        return Caller(workspace, f"OAuth client {client_id}")
    if token_id is not None:
        return Caller(workspace, f"bearer token {label or token_id[:8]}")
    return None


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


async def authenticate(session: AsyncSession, workspace_key: str, authorization: str | None) -> Caller:
    """The caller, looked up in the request's own session (a read, or the write transaction it is
    about to use): one statement, no session of its own."""
    token = bearer_token(authorization)
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
