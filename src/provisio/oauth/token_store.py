"""Issued tokens: persistence (hashes only), refresh-token rotation with a grace period, family revocation.

Rotation (RFC 9700 §4.14.2): every refresh returns a new refresh token and marks the presented one as
rotated. Presenting a rotated refresh token again is accepted for ``grace`` seconds as long as its
successor has not been used (the client lost the response): the unused successor is revoked and a new
one issued. Any other reuse means the token leaked, and the whole family is revoked.

The grace retry cannot tell a lost response from a thief replaying the old token, so the successor it
revokes is the tripwire: presenting a revoked refresh token (a superseded successor, or any token of a
revoked family) revokes the whole family. If the thief replayed within the grace period, the legitimate
client's next refresh presents that superseded successor and ends the thief's tokens too; if the
legitimate client retried, the thief's use of the superseded successor does. Only expiry is refused
quietly.

The presented row is locked (``FOR UPDATE``) for the rest of the transaction, so concurrent refreshes of
one token are decided one after the other: exactly one rotates it, the others see the rotation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import TokenMixin
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from provisio.db.models import OAuthClient, OAuthToken, new_id, utcnow
from provisio.domain.hashing import hash_secret

ACCESS_PREFIX = "pva_"
REFRESH_PREFIX = "pvr_"


def new_access_token(**_: Any) -> str:
    return ACCESS_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token(**_: Any) -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TokenRecord(TokenMixin):
    id: str
    client_pk: str
    admin_id: str | None
    scope: str
    family_id: str
    matched: str  # "access_token" or "refresh_token": which of the row's two tokens was presented
    # A grace retry of an already rotated refresh token, and the live successors issued so far: they are
    # revoked once the new one is issued (see ``complete_rotation``).
    retry: bool = False
    superseded: tuple[str, ...] = ()

    def check_client(self, client: Any) -> bool:
        return bool(self.client_pk == getattr(client, "pk", None))

    def get_scope(self) -> str:
        return self.scope


def _record(
    row: OAuthToken, matched: str, *, retry: bool = False, superseded: tuple[str, ...] = ()
) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        client_pk=row.client_pk,
        admin_id=row.admin_id,
        scope=row.scope,
        family_id=row.family_id,
        matched=matched,
        retry=retry,
        superseded=superseded,
    )


@dataclass(frozen=True)
class Lineage:
    """Where a new token comes from: a fresh authorization (family None) or a refreshed parent."""

    grant_type: str
    admin_id: str | None = None
    family_id: str | None = None
    parent_id: str | None = None
    code_id: str | None = None


def save_token(
    session: Session,
    token: dict[str, Any],
    *,
    client_pk: str,
    workspace_id: str,
    lineage: Lineage,
    refresh_ttl_seconds: int,
) -> None:
    now = utcnow()
    refresh = token.get("refresh_token")
    session.add(
        OAuthToken(
            workspace_id=workspace_id,
            client_pk=client_pk,
            admin_id=lineage.admin_id,
            grant_type=lineage.grant_type,
            scope=token.get("scope") or "",
            family_id=lineage.family_id or new_id(),
            parent_id=lineage.parent_id,
            code_id=lineage.code_id,
            access_token_hash=hash_secret(token["access_token"]),
            refresh_token_hash=hash_secret(refresh) if refresh else None,
            issued_at=now,
            access_expires_at=now + timedelta(seconds=int(token["expires_in"])),
            refresh_expires_at=now + timedelta(seconds=refresh_ttl_seconds) if refresh else None,
        )
    )
    session.flush()


def revoke_family(session: Session, family_id: str, now: datetime) -> None:
    session.execute(
        update(OAuthToken)
        .where(OAuthToken.family_id == family_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def revoke_issued_from_code(session: Session, code_id: str, now: datetime) -> None:
    families = select(OAuthToken.family_id).where(OAuthToken.code_id == code_id).scalar_subquery()
    session.execute(
        update(OAuthToken)
        .where(OAuthToken.family_id.in_(families), OAuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def refresh_token_for_use(
    session: Session, refresh_token: str, client_pk: str, *, grace_seconds: int, now: datetime | None = None
) -> TokenRecord | None:
    """The token row a refresh may proceed from, or None (after revoking the family on replay).

    The row stays locked until the transaction ends; ``complete_rotation`` finishes the refresh.
    """
    now = now or utcnow()
    row = session.execute(
        select(OAuthToken)
        .join(OAuthClient, OAuthClient.id == OAuthToken.client_pk)
        .where(
            OAuthToken.refresh_token_hash == hash_secret(refresh_token),
            OAuthToken.client_pk == client_pk,
            OAuthClient.revoked_at.is_(None),
        )
        .with_for_update(of=OAuthToken)
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.revoked_at is not None:
        # Superseded by a grace retry, or its family already revoked: either way a copy of this family is
        # in someone else's hands. Idempotent for an already revoked family.
        revoke_family(session, row.family_id, now)
        return None
    superseded: tuple[str, ...] = ()
    if row.refreshed_at is not None:
        successors = list(session.execute(select(OAuthToken).where(OAuthToken.parent_id == row.id)).scalars())
        within_grace = now - row.refreshed_at <= timedelta(seconds=grace_seconds)
        successor_used = any(s.refreshed_at is not None for s in successors)
        if not within_grace or successor_used:
            revoke_family(session, row.family_id, now)
            return None
        superseded = tuple(s.id for s in successors if s.revoked_at is None)
    if row.refresh_expires_at is None or row.refresh_expires_at <= now:
        return None
    return _record(row, "refresh_token", retry=row.refreshed_at is not None, superseded=superseded)


class RotationConflict(Exception):
    """The refresh token was rotated by a concurrent request after it was read (cannot happen while the
    row lock is held; checked anyway, and handled as a replay)."""


def complete_rotation(session: Session, record: TokenRecord, now: datetime | None = None) -> None:
    """After the new token is saved: mark ``record`` rotated, or, for a grace retry, revoke the successors
    issued before (the client never received them; if it did, presenting one ends the family)."""
    now = now or utcnow()
    if record.retry:
        if not record.superseded:
            return
        session.execute(
            update(OAuthToken)
            .where(OAuthToken.id.in_(record.superseded), OAuthToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return
    rotated = session.execute(
        update(OAuthToken)
        .where(OAuthToken.id == record.id, OAuthToken.refreshed_at.is_(None), OAuthToken.revoked_at.is_(None))
        .values(refreshed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if rotated != 1:
        revoke_family(session, record.family_id, now)  # includes the token just issued
        raise RotationConflict(record.id)


def find_token(session: Session, token: str, hint: str | None) -> TokenRecord | None:
    """For revocation (RFC 7009): the row holding ``token`` as access or refresh token; the hint only
    orders the lookup."""
    digest = hash_secret(token)
    row = session.execute(
        select(OAuthToken).where(
            or_(OAuthToken.access_token_hash == digest, OAuthToken.refresh_token_hash == digest)
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return _record(row, "refresh_token" if row.refresh_token_hash == digest else "access_token")


def revoke(session: Session, record: TokenRecord, now: datetime | None = None) -> None:
    """Revoking a refresh token ends the whole grant (RFC 7009 §2.1); an access token ends its own row."""
    now = now or utcnow()
    if record.matched == "refresh_token":
        revoke_family(session, record.family_id, now)
        return
    session.execute(
        update(OAuthToken)
        .where(OAuthToken.id == record.id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
