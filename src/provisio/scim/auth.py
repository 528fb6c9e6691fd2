"""Who is calling: a bearer token (RFC 6750) resolved to exactly one workspace.

A token of workspace A is refused on workspace B's tenant URL exactly like an unknown token, so a
caller learns nothing about other tenants.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import Member, OAuthClient, OAuthToken, ScimToken, UTCDateTime, Workspace, utcnow
from provisio.domain import members
from provisio.domain.errors import Reason
from provisio.domain.hashing import hash_secret
from provisio.domain.host_events import IDP, Actor
from provisio.domain.scim_methods import ScimMethod
from provisio.domain.workspaces import WorkspaceIdentity
from provisio.oauth.access import access_token_client
from provisio.scim.errors import ScimError
from provisio.scim.serialize import RESOURCE_COLUMNS

REALM = "provisio SCIM"


@dataclass(frozen=True)
class Caller:
    """An authenticated SCIM client: its workspace, and how the provisioning log and ledger name it."""

    workspace: WorkspaceIdentity
    actor: str
    # Which credential, and by which method: "<method>:<OAuth client id or bearer token id>", never a
    # secret (the provisioning log's credential).
    credential: str | None = None

    @property
    def event_actor(self) -> Actor:
        """Who the host events name: the IdP by its OAuth client id or bearer token id (made only for
        a write, not with every caller)."""
        _, _, credential_id = (self.credential or "").partition(":")
        return Actor(IDP, credential_id or None, self.actor)


# Built once: statement construction costs more than running this indexed lookup.
_CALLER = (
    select(
        Workspace.id,
        Workspace.key,
        Workspace.scim_enabled,
        Workspace.member_count,
        Workspace.disabled_at,
        ScimToken.id,
        ScimToken.label,
        access_token_client(),
        Workspace.scim_auth_method,
    )
    .outerjoin(
        ScimToken,
        and_(
            ScimToken.workspace_id == Workspace.id,
            ScimToken.token_hash == bindparam("token_hash"),
            ScimToken.revoked_at.is_(None),
            or_(ScimToken.expires_at.is_(None), ScimToken.expires_at > bindparam("now", type_=UTCDateTime)),
            Workspace.scim_auth_method == ScimMethod.BEARER.value,
        ),
    )
    .where(Workspace.key == bindparam("workspace_key"))
)
_IDENTITY_COLUMNS = len(fields(WorkspaceIdentity))  # first in _CALLER, in the dataclass's order
_CALLER_COLUMNS = len(_CALLER.selected_columns)


# The caller and, in the same statement, one member of its workspace: a SCIM request on /Users/{id}
# costs one round trip instead of two. An inner join, so that PostgreSQL can lock the member row (FOR
# UPDATE cannot reach the nullable side of an outer join); no row means "authenticate, then 404".
_VISIBLE_MEMBER = members.visible_member(Workspace.id, bindparam("member_id"))
_CALLER_AND_MEMBER = _CALLER.add_columns(Member).join(Member, _VISIBLE_MEMBER)
_CALLER_AND_MEMBER_LOCKED = _CALLER_AND_MEMBER.with_for_update(of=Member)
_CALLER_AND_RESOURCE = _CALLER.add_columns(*RESOURCE_COLUMNS).join(Member, _VISIBLE_MEMBER)


def _params(workspace_key: str, token: str) -> dict[str, Any]:
    return {"workspace_key": workspace_key, "token_hash": hash_secret(token), "now": utcnow()}


def _caller(row: Any) -> Caller | None:
    """The caller if the token is a live credential of the workspace's chosen method: an OAuth access
    token, or a legacy bearer token only while the workspace uses the bearer method."""
    workspace = WorkspaceIdentity(*row[:_IDENTITY_COLUMNS])
    token_id, label, client_id, method = row[_IDENTITY_COLUMNS:_CALLER_COLUMNS]
    if client_id is not None:
        return Caller(workspace, f"OAuth client {client_id}", f"{method}:{client_id}")
    if token_id is not None:
        return Caller(workspace, f"bearer token {label or token_id[:8]}", f"{ScimMethod.BEARER}:{token_id}")
    return None


async def _caller_for_token(session: AsyncSession, workspace_key: str, token: str) -> Caller | None:
    """One statement: this runs before every SCIM request."""
    row = (await session.execute(_CALLER, _params(workspace_key, token))).first()
    return None if row is None else _caller(row)


class WorkspaceDisabled(ScimError):
    """403 for a valid credential of a disabled workspace. Not 401: an identity provider takes a 401 for
    wrong credentials (Okta shows "Unauthorized", Entra quarantines the job for invalid admin
    credentials, and either may have its admin replace credentials that are fine); a 403 with this detail
    shows them why and that nothing needs fixing on their side. ``caller`` names the credential for the
    provisioning log, where these refusals are counted per minute like 401s."""

    def __init__(self, caller: Caller) -> None:
        super().__init__(
            403,
            "This workspace is disabled, so it accepts no provisioning requests and nothing was changed. "
            "The credentials are valid (do not replace them): provisioning resumes when the workspace is "
            "enabled again.",
            reason=Reason.WORKSPACE_DISABLED.value,
        )
        self.caller = caller


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
    return _checked(await _caller_for_token(session, workspace_key, token))


async def authenticate_with_member(
    session: AsyncSession,
    workspace_key: str,
    authorization: str | None,
    member_id: str,
    *,
    lock: bool = False,
    as_row: bool = False,
) -> tuple[Caller, Any | None]:
    """The caller and its workspace's member ``member_id`` in one statement: the ``Member`` (locked for
    the transaction with ``lock``), or with ``as_row`` a ``members.MemberResource`` of
    ``serialize.RESOURCE_COLUMNS``; None when the
    workspace has no such member. Raises 401 first: a stranger learns nothing about members."""
    token = bearer_token(authorization)
    statement = _CALLER_AND_MEMBER_LOCKED if lock else _CALLER_AND_MEMBER
    if as_row:
        statement = _CALLER_AND_RESOURCE
    params = {**_params(workspace_key, token), "member_id": member_id}
    row = (await session.execute(statement, params)).first()
    if row is None:
        return _checked(await _caller_for_token(session, workspace_key, token)), None
    member = members.MemberResource(*row[_CALLER_COLUMNS:]) if as_row else row[_CALLER_COLUMNS]
    return _checked(_caller(row)), member


@dataclass(frozen=True)
class Refusal:
    """Whose request was refused with 401 on an existing workspace's Tenant URL, as far as it can be
    told without trusting the caller: the workspace, the credential if it is one of the workspace's
    (revoked, expired, of another method), and how the provisioning log names the caller."""

    workspace_id: str
    actor: str
    credential: str | None


_WORKSPACE_BY_KEY = select(Workspace.id, Workspace.scim_enabled, Workspace.scim_auth_method).where(
    Workspace.key == bindparam("workspace_key")
)
_TOKEN_OF_WORKSPACE = select(ScimToken.id, ScimToken.label, ScimToken.revoked_at, ScimToken.expires_at).where(
    ScimToken.workspace_id == bindparam("workspace_id"), ScimToken.token_hash == bindparam("token_hash")
)
_ACCESS_TOKEN_OF_WORKSPACE = (
    select(
        OAuthClient.client_id,
        OAuthClient.grant_method,
        OAuthClient.revoked_at,
        OAuthToken.revoked_at,
        OAuthToken.access_expires_at,
    )
    .join(OAuthClient, OAuthClient.id == OAuthToken.client_pk)
    .where(
        OAuthToken.workspace_id == bindparam("workspace_id"),
        OAuthToken.access_token_hash == bindparam("token_hash"),
    )
)


async def refusal(session: AsyncSession, workspace_key: str, authorization: str | None) -> Refusal | None:
    """Who a 401 on ``workspace_key``'s Tenant URL was for (None: no workspace has that key, and nothing
    is logged). Runs only after a refusal, never on the path of an accepted request."""
    ws = (await session.execute(_WORKSPACE_BY_KEY, {"workspace_key": workspace_key})).first()
    if ws is None:
        return None
    workspace_id, scim_enabled, method = ws
    try:
        token = bearer_token(authorization)
    except Unauthorized:
        return Refusal(workspace_id, "no bearer credential", None)
    params = {"workspace_id": workspace_id, "token_hash": hash_secret(token)}
    now = utcnow()
    bearer = (await session.execute(_TOKEN_OF_WORKSPACE, params)).first()
    if bearer is not None:
        token_id, label, revoked_at, expires_at = bearer
        name = f"bearer token {label or token_id[:8]}"
        return Refusal(
            workspace_id,
            _why(name, scim_enabled, revoked_at, expires_at, now, method, "bearer"),
            f"{ScimMethod.BEARER}:{token_id}",
        )
    access = (await session.execute(_ACCESS_TOKEN_OF_WORKSPACE, params)).first()
    if access is not None:
        client_id, grant_method, client_revoked, token_revoked, expires_at = access
        revoked_at = client_revoked or token_revoked
        name = f"OAuth client {client_id}"
        return Refusal(
            workspace_id,
            _why(name, scim_enabled, revoked_at, expires_at, now, method, grant_method),
            f"{grant_method}:{client_id}",
        )
    return Refusal(workspace_id, "unknown credential", None)


def _why(
    name: str,
    scim_enabled: bool,
    revoked_at: datetime | None,
    expires_at: datetime | None,
    now: datetime,
    method: str,
    credential_method: str,
) -> str:
    if revoked_at is not None:
        return f"{name} (revoked)"
    if expires_at is not None and expires_at <= now:
        return f"{name} (expired)"
    if credential_method != method:
        return f"{name} (not the workspace's method)"
    if not scim_enabled:
        return f"{name} (SCIM off)"
    return name


def _checked(caller: Caller | None) -> Caller:
    if caller is None:
        raise Unauthorized(
            "The access token is invalid, expired or revoked, or it belongs to another workspace. Check the "
            "Tenant URL and the credentials in Workspace settings > Advanced > SCIM.",
            "invalid_token",
        )
    if caller.workspace.disabled:  # before the SCIM switch, which a disabled workspace keeps as it was
        raise WorkspaceDisabled(caller)
    if not caller.workspace.scim_enabled:
        raise Unauthorized(
            "SCIM provisioning is turned off for this workspace. An admin can turn it on in Workspace "
            "settings > Advanced > SCIM.",
            "invalid_token",
        )
    return caller
