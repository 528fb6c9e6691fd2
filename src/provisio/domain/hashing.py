"""How server-issued secrets are stored: only a SHA-256 of each (SCIM bearer tokens, OAuth client secrets,
authorization codes, access and refresh tokens, console session tokens).

Every such secret is a 256-bit random value, so a fast unsalted hash cannot be brute-forced and lets the
database look a presented secret up by its hash. (Passwords, chosen by people, use argon2 instead: see
``provisio.domain.admins``.)
"""

from __future__ import annotations

import hashlib
import hmac


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, secret_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_secret(secret), secret_hash)
