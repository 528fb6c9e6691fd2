"""Redirect URIs of a workspace's Authorization Code client: exact strings, ``https`` only (loopback ``http``
allowed for development), never a fragment or a wildcard (RFC 6749 §3.1.2, RFC 9700 §4.1)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import OAuthRedirectUri, Workspace
from provisio.domain.errors import DomainError, Kind
from provisio.domain.workspace_state import ensure_changeable

MAX_LENGTH = 2000
MAX_PER_WORKSPACE = 20


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_redirect_uri(uri: str) -> str:
    """The URI as it will be matched (surrounding blanks removed), or a DomainError saying what is wrong."""
    uri = uri.strip()
    if not uri:
        raise DomainError(Kind.INVALID, "Enter a redirect URI.")
    if len(uri) > MAX_LENGTH:
        raise DomainError(Kind.INVALID, f"A redirect URI can have at most {MAX_LENGTH} characters.")
    if any(c.isspace() for c in uri) or "*" in uri:
        raise DomainError(Kind.INVALID, "A redirect URI is matched exactly: no spaces or wildcards (*).")
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        raise DomainError(Kind.INVALID, f"{uri!r} is not a valid URL.") from None
    if parts.scheme not in ("https", "http") or not host:
        raise DomainError(Kind.INVALID, "A redirect URI must be an absolute https:// URL.")
    if parts.scheme == "http" and not is_loopback(host):
        raise DomainError(
            Kind.INVALID, "A redirect URI must use https:// (plain http is allowed only for localhost)."
        )
    if parts.fragment or uri.endswith("#"):
        raise DomainError(Kind.INVALID, "A redirect URI cannot contain a fragment (#…).")
    if parts.username or parts.password:
        raise DomainError(Kind.INVALID, "A redirect URI cannot contain a user name or password.")
    return uri


def redirect_uris_query(workspace_id: str) -> Select[str]:
    """The workspace's redirect URIs in the order they were added (also run by the synchronous OAuth
    server, ``provisio.oauth.clients``)."""
    return (
        select(OAuthRedirectUri.uri)
        .where(OAuthRedirectUri.workspace_id == workspace_id)
        .order_by(OAuthRedirectUri.created_at, OAuthRedirectUri.uri)
    )


async def list_redirect_uris(session: AsyncSession, workspace_id: str) -> list[str]:
    result = await session.execute(redirect_uris_query(workspace_id))
    return list(result.scalars())


async def add_redirect_uri(session: AsyncSession, workspace: Workspace, uri: str) -> str:
    ensure_changeable(workspace)
    uri = validate_redirect_uri(uri)
    existing = await list_redirect_uris(session, workspace.id)
    if uri in existing:
        raise DomainError(Kind.CONFLICT, f"{uri} is already in the list.")
    if len(existing) >= MAX_PER_WORKSPACE:
        raise DomainError(Kind.INVALID, f"A workspace can have at most {MAX_PER_WORKSPACE} redirect URIs.")
    session.add(OAuthRedirectUri(workspace_id=workspace.id, uri=uri))
    await session.flush()
    return uri


async def remove_redirect_uri(session: AsyncSession, workspace: Workspace, uri: str) -> bool:
    ensure_changeable(workspace)
    result = await session.execute(
        delete(OAuthRedirectUri).where(
            OAuthRedirectUri.workspace_id == workspace.id, OAuthRedirectUri.uri == uri
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
