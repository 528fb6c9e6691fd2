"""Sign-in links ("portal links"): the host application's *Configure SCIM* button, one click into the
console as an admin of one workspace, without a provisio password.

The host application, authenticated with an operator API key, asks for a link for a person (an e-mail
address it has authenticated) and a workspace. The link carries a 256-bit random token; only its
SHA-256 is stored (``hashing``). It works once, for ``LINK_TTL``, and only while the API key that made
it is not revoked. Opening it spends the token in one conditional ``UPDATE … WHERE used_at IS NULL AND
expires_at > now`` (so of two concurrent opens exactly one gets the row), makes the person an admin of
the workspace if they are not one (``workspace_admins.ensure_admin``, in the same transaction), and
hands the console what the new session needs: the account, the one workspace the session may reach,
and the return URL. An account that administers other workspaces too reaches only this one with that
session: the host application vouched for this workspace alone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import ApiKey, PortalLink, Workspace, utcnow
from provisio.domain import admins as admin_service
from provisio.domain import api_keys
from provisio.domain import workspace_admins as workspace_admin_service
from provisio.domain.errors import DomainError, Kind
from provisio.domain.hashing import hash_secret
from provisio.domain.return_urls import AllowedReturnUrl, check_return_url
from provisio.domain.workspace_state import ensure_changeable

LINK_TTL = timedelta(minutes=5)
PORTAL_PATH = "/console/portal/"
# Used and expired links are kept this long, so that opening one again says what happened to it
# rather than that it is unknown; then the next link made deletes them.
KEEP_SPENT = timedelta(days=1)
_TOKEN_BYTES = 32
_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_TOKEN_LENGTH = len(secrets.token_urlsafe(_TOKEN_BYTES))


def portal_url(public_base: str, token: str) -> str:
    return public_base.rstrip("/") + PORTAL_PATH + token


class InvalidLinkRequest(DomainError):
    """The link was not made: ``fields`` names each refused field (``email``, ``return_url``) and why."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(Kind.INVALID, " ".join(fields.values()))
        self.fields = fields


@dataclass(frozen=True)
class IssuedLink:
    token: str = field(repr=False)  # shown once, in the URL
    email: str
    return_url: str | None
    expires_at: datetime


async def create_link(
    session: AsyncSession,
    workspace: Workspace,
    email: str,
    *,
    return_url: str | None,
    allowed: tuple[AllowedReturnUrl, ...],
    api_key_id: int,
    now: datetime | None = None,
) -> IssuedLink:
    """A new link for ``email`` into ``workspace``, made with the API key ``api_key_id``. The address must
    be one an admin account can have; ``return_url`` must be on ``allowed`` (``return_urls``)."""
    ensure_changeable(workspace)
    now = now or utcnow()
    refused: dict[str, str] = {}
    try:
        address = admin_service.normalise_address(email)
    except DomainError as exc:
        refused["email"] = exc.detail
    try:
        url = check_return_url(return_url, allowed) if return_url is not None else None
    except DomainError as exc:
        refused["return_url"] = exc.detail
    if refused:
        raise InvalidLinkRequest(refused)
    await session.execute(delete(PortalLink).where(PortalLink.expires_at <= now - KEEP_SPENT))
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    link = PortalLink(
        token_hash=hash_secret(token),
        workspace_id=workspace.id,
        email=address,
        return_url=url,
        api_key_id=api_key_id,
        created_at=now,
        expires_at=now + LINK_TTL,
    )
    session.add(link)
    await session.flush()
    return IssuedLink(token=token, email=address, return_url=url, expires_at=link.expires_at)


class Refusal(StrEnum):
    """Why a link did not sign anyone in."""

    UNKNOWN = "unknown"  # malformed, mistyped, or never made
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"  # the API key that made it was revoked


_REFUSALS = {
    Refusal.UNKNOWN: "This sign-in link is not valid: it may have been copied incompletely. Go back and ask "
    "your application for a new link (open provisio from its SCIM settings again).",
    Refusal.USED: "This sign-in link has been used already: each link signs in once. Go back and ask your "
    "application for a new link (open provisio from its SCIM settings again).",
    Refusal.EXPIRED: f"This sign-in link has expired: a link works for {LINK_TTL.seconds // 60} minutes "
    "after it is made. Go back and ask your application for a new link (open provisio from its SCIM "
    "settings again).",
    Refusal.REVOKED: "This sign-in link no longer works: the API key of the application that made it has "
    "been revoked. Ask your application for a new link; if that fails too, contact its support.",
}


class LinkRefused(DomainError):
    def __init__(self, refusal: Refusal, return_url: str | None = None) -> None:
        kind = Kind.NOT_FOUND if refusal is Refusal.UNKNOWN else Kind.PRECONDITION
        super().__init__(kind, _REFUSALS[refusal])
        self.refusal = refusal
        # Where the person came from, when the link is known: the error page offers the way back.
        self.return_url = return_url


@dataclass(frozen=True)
class OpenedLink:
    admin_id: str
    email: str
    workspace_id: str
    workspace_key: str
    return_url: str | None
    admin_created: bool  # the account was made for this link


def well_formed(token: str) -> bool:
    return len(token) == _TOKEN_LENGTH and set(token) <= _TOKEN_ALPHABET


async def open_link(session: AsyncSession, token: str, *, now: datetime | None = None) -> OpenedLink:
    """Spend the link and make its person an admin of its workspace (if they are not one), in the
    caller's transaction; else ``LinkRefused`` saying why, with nothing written."""
    now = now or utcnow()
    if not well_formed(token):
        raise LinkRefused(Refusal.UNKNOWN)
    token_hash = hash_secret(token)
    live_keys = select(ApiKey.id).where(ApiKey.revoked_at.is_(None))
    spent = (
        await session.execute(
            update(PortalLink)
            .where(
                PortalLink.token_hash == token_hash,
                PortalLink.used_at.is_(None),
                PortalLink.expires_at > now,
                PortalLink.api_key_id.in_(live_keys),
            )
            .values(used_at=now)
            .returning(
                PortalLink.workspace_id, PortalLink.email, PortalLink.return_url, PortalLink.api_key_id
            )
            .execution_options(synchronize_session=False)
        )
    ).first()
    if spent is None:
        raise await _why_refused(session, token_hash, now)
    workspace = await session.get(Workspace, spent.workspace_id)
    key = await session.get(ApiKey, spent.api_key_id)
    if workspace is None or key is None:  # not reached: deleting either deletes the link
        raise LinkRefused(Refusal.UNKNOWN)
    added = await workspace_admin_service.ensure_admin(
        session, workspace, spent.email, actor=f"{api_keys.actor(key)} (sign-in link)"
    )
    return OpenedLink(
        admin_id=added.admin_id,
        email=added.email,
        workspace_id=workspace.id,
        workspace_key=workspace.key,
        return_url=spent.return_url,
        admin_created=added.created,
    )


async def _why_refused(session: AsyncSession, token_hash: str, now: datetime) -> LinkRefused:
    row = (
        await session.execute(
            select(PortalLink.used_at, PortalLink.expires_at, PortalLink.return_url, ApiKey.revoked_at)
            .join(ApiKey, ApiKey.id == PortalLink.api_key_id)
            .where(PortalLink.token_hash == token_hash)
        )
    ).first()
    if row is None:
        return LinkRefused(Refusal.UNKNOWN)
    if row.used_at is not None:
        refusal = Refusal.USED
    elif row.revoked_at is not None:
        refusal = Refusal.REVOKED
    elif row.expires_at <= now:
        refusal = Refusal.EXPIRED
    else:  # cannot happen: the update's conditions only ever become false
        refusal = Refusal.USED
    return LinkRefused(refusal, row.return_url)
