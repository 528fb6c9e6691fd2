"""Authorization codes: single-use, short-lived, bound to client, redirect URI and PKCE challenge.

A code is consumed atomically when it is first presented, so two concurrent exchanges cannot both
succeed; presenting a consumed code again revokes every token issued from it (RFC 6749 §4.1.2).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from provisio.db.models import OAuthAuthorizationCode, utcnow
from provisio.domain.hashing import hash_secret
from provisio.oauth.clients import Client
from provisio.oauth.token_store import revoke_issued_from_code

CODE_PREFIX = "pvac_"


@dataclass(frozen=True)
class CodeRecord(AuthorizationCodeMixin):
    id: str
    admin_id: str | None
    redirect_uri: str | None
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


def new_code() -> str:
    return CODE_PREFIX + secrets.token_urlsafe(32)


def save_code(
    session: Session,
    code: str,
    client: Client,
    *,
    admin_id: str,
    redirect_uri: str | None,
    scope: str,
    code_challenge: str | None,
    code_challenge_method: str | None,
    ttl_seconds: int,
) -> None:
    now = utcnow()
    session.add(
        OAuthAuthorizationCode(
            code_hash=hash_secret(code),
            client_pk=client.pk,
            workspace_id=client.workspace_id,
            admin_id=admin_id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    session.flush()


def consume_code(
    session: Session, code: str, client: Client, now: datetime | None = None
) -> CodeRecord | None:
    """The code's record if this is its first, timely use by its own client; otherwise None.

    A second use revokes whatever the first use issued.
    """
    now = now or utcnow()
    row = session.execute(
        select(OAuthAuthorizationCode).where(
            OAuthAuthorizationCode.code_hash == hash_secret(code),
            OAuthAuthorizationCode.client_pk == client.pk,
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    claimed = session.execute(
        update(OAuthAuthorizationCode)
        .where(OAuthAuthorizationCode.id == row.id, OAuthAuthorizationCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not claimed:
        revoke_issued_from_code(session, row.id, now)
        return None
    if row.expires_at <= now:
        return None
    return CodeRecord(
        id=row.id,
        admin_id=row.admin_id,
        redirect_uri=row.redirect_uri,
        scope=row.scope,
        code_challenge=row.code_challenge,
        code_challenge_method=row.code_challenge_method,
    )
