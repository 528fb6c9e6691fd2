"""Credentials just issued, carried across the POST-redirect-GET of *Generate Credentials* and shown by
exactly one page view.

Why this design: the POST must not render the secret (a reload would re-post it and issue new
credentials), so the secret has to wait somewhere for the GET that follows the redirect, and it must
never be readable again after that GET.

- The credentials are encrypted (AES-256-GCM) under a fresh random key, and the ciphertext goes into a
  ``credential_reveals`` row that expires after ``TTL_SECONDS``.
- The key goes only to the admin's browser, in a short-lived ``HttpOnly`` cookie (``SameSite=Lax``,
  ``Secure`` and ``__Host-`` over https, like the session cookie) next to the row's id. It is never
  stored on the server and never appears in a URL, so it reaches no history, log or ``Referer``.
- The GET deletes the row in the statement that reads it (``DELETE … RETURNING``), so two requests cannot
  both get it, and clears the cookie. A reload, back/forward or a replayed cookie finds no row.
- The row is bound to the console session (the SHA-256 the session cookie is stored as) and the
  workspace, and both are the cipher's associated data: another admin's session, or a row moved to
  another workspace, does not decrypt.

So a copy of the database, or of the cookie, alone yields nothing, and together only until the first
view or the expiry. A signed cookie carrying the encrypted secret itself was the alternative; it cannot
be made single-use without server state, and a copied cookie would show the secret again.

The Admins page hands the one-time set-password link of a new admin to its next view the same way
(``stash_payload``/``take_payload``, under a cookie of its own).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from provisio.config import Settings
from provisio.console import cookies
from provisio.db.models import CredentialReveal, utcnow
from provisio.domain.scim_credentials import IssuedCredentials
from provisio.domain.scim_methods import ScimMethod

COOKIE = "provisio_reveal"
CREDENTIALS = "credentials"  # the kind of payload the SCIM settings page shows
# Long enough for the redirect to be followed, short enough that an unread secret does not linger.
TTL_SECONDS = 120
NONCE_BYTES = 12


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _associated(row_id: str, session_hash: str, workspace_id: str) -> bytes:
    return f"{row_id}|{session_hash}|{workspace_id}".encode()


async def stash(
    session: AsyncSession, session_hash: str, workspace_id: str, issued: IssuedCredentials
) -> str:
    """Store ``issued`` encrypted for one view; returns the cookie value that can read it."""
    payload = {
        "method": issued.method.value,
        "client_id": issued.client_id,
        "client_secret": issued.client_secret,
        "token": issued.token,
    }
    return await stash_payload(session, session_hash, workspace_id, CREDENTIALS, payload)


async def take(
    session: AsyncSession, cookie: str | None, session_hash: str, workspace_id: str
) -> IssuedCredentials | None:
    """The credentials behind ``cookie`` if they wait for this session and workspace; the row is gone
    afterwards, whatever the outcome."""
    data = await take_payload(session, cookie, session_hash, workspace_id, CREDENTIALS)
    if data is None:
        return None
    return IssuedCredentials(
        method=ScimMethod(data["method"]),
        client_id=data["client_id"],
        client_secret=data["client_secret"],
        token=data["token"],
    )


async def stash_payload(
    session: AsyncSession, session_hash: str, workspace_id: str, kind: str, payload: dict[str, Any]
) -> str:
    """Store any one-time secret (``payload``, JSON) the same way; ``kind`` says which page shows it, so
    a cookie of one page never yields its secret on another."""
    now = utcnow()
    await session.execute(delete(CredentialReveal).where(CredentialReveal.expires_at <= now))
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    row_id = secrets.token_hex(16)
    plain = json.dumps({"kind": kind, "data": payload}).encode()
    sealed = AESGCM(key).encrypt(nonce, plain, _associated(row_id, session_hash, workspace_id))
    session.add(
        CredentialReveal(
            id=row_id,
            session_hash=session_hash,
            workspace_id=workspace_id,
            ciphertext=_b64(nonce + sealed),
            expires_at=now + timedelta(seconds=TTL_SECONDS),
        )
    )
    await session.flush()
    return f"{row_id}.{_b64(key)}"


async def take_payload(
    session: AsyncSession, cookie: str | None, session_hash: str, workspace_id: str, kind: str
) -> dict[str, Any] | None:
    """The payload of ``kind`` behind ``cookie`` if it waits for this session and workspace; the row is
    gone afterwards, whatever the outcome."""
    if not cookie:
        return None
    row_id, _, key_text = cookie.partition(".")
    try:
        key = _unb64(key_text)
    except ValueError:
        return None
    if len(key) != 32 or not row_id:
        return None
    result = await session.execute(
        delete(CredentialReveal)
        .where(
            CredentialReveal.id == row_id,
            CredentialReveal.session_hash == session_hash,
            CredentialReveal.workspace_id == workspace_id,
            CredentialReveal.expires_at > utcnow(),
        )
        .returning(CredentialReveal.ciphertext)
    )
    sealed = result.scalar_one_or_none()
    if sealed is None:
        return None
    blob = _unb64(sealed)
    try:
        plain = AESGCM(key).decrypt(
            blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated(row_id, session_hash, workspace_id)
        )
    except InvalidTag:
        return None
    document = json.loads(plain)
    if document.get("kind") != kind:
        return None
    data: dict[str, Any] = document["data"]
    return data


def read_cookie(request: Request, settings: Settings, name: str = COOKIE) -> str | None:
    return cookies.read(request, settings, name)


def set_cookie(response: Response, settings: Settings, value: str, name: str = COOKIE) -> None:
    cookies.store(response, settings, name, value, max_age=TTL_SECONDS)


def clear_cookie(response: Response, settings: Settings, name: str = COOKIE) -> None:
    cookies.remove(response, settings, name)
