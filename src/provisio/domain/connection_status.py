"""Is the identity provider connected? What the *Connection status* panel of the SCIM settings page says,
from the provisioning log and the credential tables.

Every query is bounded, so the panel stays cheap on a log of millions of rows: the newest success and the
newest failure are one step down ``ix_events_workspace_outcome`` (newest id first), the last day's counts a
range of ``ix_events_workspace_at``, and the credential lookups go through the rows of the workspace's one
live client or its live bearer tokens.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.engine import Database
from provisio.db.models import (
    OAuthClient,
    OAuthToken,
    ProvisioningEvent,
    ScimLastRequest,
    ScimToken,
    Workspace,
    utcnow,
)
from provisio.domain.events import FAILURE, SUCCESS
from provisio.domain.scim_methods import ScimMethod

# A successful request within this long means "connected"; the counts cover the same span.
CONNECTED_WITHIN = timedelta(hours=24)
# Okta refreshes its access token only when it has something to send, possibly weeks apart: warn this long
# before an unused refresh token expires, while the admin can still make Okta use it.
REFRESH_WARNING = timedelta(days=7)

# A successful request is remembered at most this often per workspace and process: a busy IdP costs one
# small write a minute, and the panel is at most this late.
NOTE_EVERY_SECONDS = 60.0
_MAX_NOTED = 50_000  # workspaces remembered by the throttle before it starts afresh

log = structlog.get_logger("provisio.connection")

OKTA = "Okta"
ENTRA = "Microsoft Entra"
OTHER = "other"

# Okta sends "Okta SCIM Client 1.0.0"; Entra "Microsoft.Azure.AD…" or "Microsoft Azure AD SCIM provisioning"
# style agents (and the odd "Entra"/"AAD" in newer ones).
_OKTA_AGENT = re.compile(r"\bokta\b", re.IGNORECASE)
_ENTRA_AGENT = re.compile(r"azure[ ._-]?ad|\bentra\b|\baad\b", re.IGNORECASE)


def idp_from_user_agent(user_agent: str | None) -> str | None:
    """``Okta``, ``Microsoft Entra`` or ``other`` for a request's User-Agent; None without one."""
    if not user_agent or not user_agent.strip():
        return None
    if _OKTA_AGENT.search(user_agent):
        return OKTA
    if _ENTRA_AGENT.search(user_agent):
        return ENTRA
    return OTHER


@dataclass(frozen=True)
class LoggedRequest:
    """One event of the provisioning log, as the panel shows it."""

    at: datetime
    action: str
    status: int
    detail: str | None
    user_agent: str | None
    credential: str | None


@dataclass(frozen=True)
class RefreshToken:
    """The live refresh token of an Authorization Code grant: when it was issued (by the authorization, or
    by the last rotation) and when it expires if Okta does not use it before."""

    issued_at: datetime
    rotated: bool
    expires_at: datetime
    expired: bool
    expires_soon: bool


@dataclass(frozen=True)
class ConnectionStatus:
    checked_at: datetime
    connected: bool
    last_success: LoggedRequest | None
    last_failure: LoggedRequest | None
    requests_24h: int
    failures_24h: int
    idp: str | None
    credential_last_used: datetime | None
    refresh: RefreshToken | None

    @property
    def waiting(self) -> bool:
        """Nothing has succeeded yet."""
        return self.last_success is None


def _logged(row: ProvisioningEvent | None) -> LoggedRequest | None:
    if row is None:
        return None
    # A refusal repeated within a minute is one row; its last repeat is the latest failure.
    return LoggedRequest(
        at=row.last_at or row.at,
        action=row.action,
        status=row.status,
        detail=row.detail,
        user_agent=row.user_agent,
        credential=row.credential,
    )


_noted: dict[str, float] = {}
_UPSERTS: dict[str, Any] = {}


def _upsert(dialect: str) -> Any:
    if dialect not in _UPSERTS:
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ScimLastRequest)
        columns = ("at", "action", "status", "user_agent", "credential")
        _UPSERTS[dialect] = insert.on_conflict_do_update(
            index_elements=["workspace_id"], set_={name: insert.excluded[name] for name in columns}
        )
    return _UPSERTS[dialect]


async def note_success(
    db: Database,
    *,
    workspace_id: str,
    action: str,
    status: int,
    user_agent: str | None,
    credential: str | None,
) -> None:
    """Remember a successful SCIM request, reads included, at most once a minute per workspace (in this
    process); a legacy bearer token's ``last_used_at`` is kept with it. Never fails the request: the
    write is best effort, and a failure is logged."""
    now_mono = time.monotonic()
    last = _noted.get(workspace_id)
    if last is not None and now_mono - last < NOTE_EVERY_SECONDS:
        return
    if len(_noted) >= _MAX_NOTED:
        _noted.clear()
    _noted[workspace_id] = now_mono
    now = utcnow()
    row = {
        "workspace_id": workspace_id,
        "at": now,
        "action": action[:40],
        "status": status,
        "user_agent": user_agent[:200] if user_agent else None,
        "credential": credential[:200] if credential else None,
    }
    try:
        async with db.writing() as session:
            await session.execute(_upsert(session.get_bind().dialect.name), row)
            method, _, token_id = (credential or "").partition(":")
            if method == ScimMethod.BEARER.value and token_id:
                await session.execute(
                    update(ScimToken)
                    .where(ScimToken.id == token_id, ScimToken.workspace_id == workspace_id)
                    .values(last_used_at=now)
                )
    except Exception:
        _noted.pop(workspace_id, None)  # try again with the next request
        log.warning("connection.note_failed", workspace_id=workspace_id, exc_info=True)


def forget_noted() -> None:
    """Start the throttle afresh (tests that move the clock)."""
    _noted.clear()


async def _last_request(session: AsyncSession, workspace_id: str) -> LoggedRequest | None:
    row = await session.get(ScimLastRequest, workspace_id)
    if row is None:
        return None
    return LoggedRequest(
        at=row.at,
        action=row.action,
        status=row.status,
        detail=None,
        user_agent=row.user_agent,
        credential=row.credential,
    )


async def _newest(session: AsyncSession, workspace_id: str, outcome: str) -> LoggedRequest | None:
    row = (
        await session.execute(
            select(ProvisioningEvent)
            .where(ProvisioningEvent.workspace_id == workspace_id, ProvisioningEvent.outcome == outcome)
            .order_by(ProvisioningEvent.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return _logged(row)


async def _counts(session: AsyncSession, workspace_id: str, since: datetime) -> tuple[int, int]:
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(ProvisioningEvent.repeats), 0),
                func.coalesce(
                    func.sum(
                        case((ProvisioningEvent.outcome == SUCCESS, 0), else_=ProvisioningEvent.repeats)
                    ),
                    0,
                ),
            ).where(ProvisioningEvent.workspace_id == workspace_id, ProvisioningEvent.at >= since)
        )
    ).one()
    return int(row[0]), int(row[1])


async def _live_client(session: AsyncSession, workspace: Workspace) -> tuple[str, str] | None:
    """The primary key and client ID of the workspace's live client for its method."""
    row = (
        await session.execute(
            select(OAuthClient.id, OAuthClient.client_id)
            .where(
                OAuthClient.workspace_id == workspace.id,
                OAuthClient.revoked_at.is_(None),
                OAuthClient.grant_method == workspace.scim_auth_method,
            )
            .order_by(OAuthClient.created_at.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else (row.id, row.client_id)


async def _token_last_issued(session: AsyncSession, client_pk: str) -> datetime | None:
    """When the IdP last obtained an access token with the client's credentials (or its refresh token)."""
    result = await session.execute(
        select(func.max(OAuthToken.issued_at)).where(OAuthToken.client_pk == client_pk)
    )
    return result.scalar_one_or_none()


async def _bearer_last_used(
    session: AsyncSession, workspace_id: str, now: datetime, last_success: LoggedRequest | None
) -> datetime | None:
    """When a live bearer token was last used: as recorded on the token, or the newest logged success
    since the oldest live token was created (only a live token can have authenticated it)."""
    row = (
        await session.execute(
            select(func.max(ScimToken.last_used_at), func.min(ScimToken.created_at)).where(
                ScimToken.workspace_id == workspace_id,
                ScimToken.revoked_at.is_(None),
                or_(ScimToken.expires_at.is_(None), ScimToken.expires_at > now),
            )
        )
    ).one()
    recorded, oldest = row
    if oldest is None:
        return None
    logged = last_success.at if last_success is not None and last_success.at >= oldest else None
    return _latest(recorded, logged)


async def _refresh_token(session: AsyncSession, client_pk: str, now: datetime) -> RefreshToken | None:
    """The newest refresh token not yet rotated away or revoked."""
    row = (
        await session.execute(
            select(OAuthToken.issued_at, OAuthToken.grant_type, OAuthToken.refresh_expires_at)
            .where(
                OAuthToken.client_pk == client_pk,
                OAuthToken.refresh_token_hash.is_not(None),
                OAuthToken.refresh_expires_at.is_not(None),
                OAuthToken.refreshed_at.is_(None),
                OAuthToken.revoked_at.is_(None),
            )
            .order_by(OAuthToken.issued_at.desc())
            .limit(1)
        )
    ).first()
    if row is None or row.refresh_expires_at is None:
        return None
    issued_at, grant_type, expires_at = row.issued_at, row.grant_type, row.refresh_expires_at
    return RefreshToken(
        issued_at=issued_at,
        rotated=grant_type == "refresh_token",
        expires_at=expires_at,
        expired=expires_at <= now,
        expires_soon=now < expires_at <= now + REFRESH_WARNING,
    )


def _newer(first: LoggedRequest | None, second: LoggedRequest | None) -> LoggedRequest | None:
    if first is None or second is None:
        return first or second
    return second if second.at > first.at else first


def _latest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


async def connection_status(
    session: AsyncSession, workspace: Workspace, *, now: datetime | None = None
) -> ConnectionStatus:
    now = now or utcnow()
    method = ScimMethod(workspace.scim_auth_method)
    last_success = _newer(
        await _newest(session, workspace.id, SUCCESS), await _last_request(session, workspace.id)
    )
    last_failure = await _newest(session, workspace.id, FAILURE)
    requests, failures = await _counts(session, workspace.id, now - CONNECTED_WITHIN)

    refresh = None
    if method is ScimMethod.BEARER:
        credential_used = await _bearer_last_used(session, workspace.id, now, last_success)
    else:
        client = await _live_client(session, workspace)
        credential_used = None
        if client is not None:
            client_pk, client_id = client
            # A token request at the Token URL, or a logged success made with one of its access tokens
            # (the log names the credential "<method>:<client ID>").
            ours = last_success is not None and last_success.credential == f"{method.value}:{client_id}"
            credential_used = _latest(
                await _token_last_issued(session, client_pk),
                last_success.at if ours and last_success else None,
            )
            if method is ScimMethod.AUTHORIZATION_CODE:
                refresh = await _refresh_token(session, client_pk, now)

    agent_source = last_success or last_failure
    return ConnectionStatus(
        checked_at=now,
        connected=last_success is not None and last_success.at >= now - CONNECTED_WITHIN,
        last_success=last_success,
        last_failure=last_failure,
        requests_24h=requests,
        failures_24h=failures,
        idp=idp_from_user_agent(agent_source.user_agent) if agent_source else None,
        credential_last_used=credential_used,
        refresh=refresh,
    )
