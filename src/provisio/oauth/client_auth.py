"""Client authentication at the token and revocation endpoints (RFC 6749 §2.3).

An OAuth client has one secret, plus, during a rotation window, the one it replaced: either
authenticates it (``clients.secret_accepted``). One method per request: HTTP Basic or ``client_id`` and
``client_secret`` in the body, never both ("The client MUST NOT use more than one authentication method
in each request"), so a request cannot pass on one credential while carrying another. An unknown client
ID and a wrong secret get the same answer, after the same work (a secret is compared with two stored
hashes either way): which client IDs exist is not for an unauthenticated caller to learn. Failures are
401 ``invalid_client`` with a Basic challenge (RFC 6749 §5.2).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError
from sqlalchemy.orm import Session

from provisio.domain.hashing import hash_secret
from provisio.oauth.clients import Client, load_client, secret_accepted
from provisio.oauth.requests import StarletteOAuth2Request, well_formed

FAILED = "Client authentication failed."
REQUIRED = "Client authentication is required: HTTP Basic, or client_id and client_secret in the body."
MALFORMED_BASIC = "The Authorization header does not hold HTTP Basic client credentials."
TWO_METHODS = "Use one client authentication method: HTTP Basic or client_secret in the body, not both."
CHALLENGE = "WWW-Authenticate"
# Compared with the presented secret when no client has the presented ID, so that case costs the same.
_NO_CLIENT_HASH = hash_secret("no client has this ID")


class ClientAuthenticationFailed(InvalidClientError):
    status_code = 401

    def get_headers(self) -> list[tuple[str, str]]:
        # Authlib's challenge lacks the realm HTTP Basic requires (RFC 7617 §2).
        return [
            (name, value.replace("Basic ", 'Basic realm="OAuth", ', 1) if name == CHALLENGE else value)
            for name, value in super().get_headers()
        ]


@dataclass(frozen=True)
class Credentials:
    method: str  # "client_secret_basic" or "client_secret_post"
    client_id: str
    secret: str


def _basic_part(raw: str) -> str:
    # RFC 6749 §2.3.1: the ID and the secret are form-urlencoded before they go into the Basic header.
    try:
        value = unquote_to_bytes(raw.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise ClientAuthenticationFailed(MALFORMED_BASIC) from None
    return value


def _basic(header: str) -> Credentials:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise ClientAuthenticationFailed(MALFORMED_BASIC)
    try:
        decoded = base64.b64decode(token.strip().encode("ascii"), validate=True).decode("utf-8")
    except ValueError:  # not ASCII, not base64, not UTF-8
        raise ClientAuthenticationFailed(MALFORMED_BASIC) from None
    raw_id, colon, raw_secret = decoded.partition(":")
    client_id, secret = _basic_part(raw_id), _basic_part(raw_secret)
    if not (colon and client_id and secret):
        raise ClientAuthenticationFailed(MALFORMED_BASIC)
    if not (well_formed("client_id", client_id) and well_formed("client_secret", secret)):
        raise ClientAuthenticationFailed(MALFORMED_BASIC)
    return Credentials("client_secret_basic", client_id, secret)


def presented(request: StarletteOAuth2Request) -> Credentials:
    """The one set of client credentials the request carries (its body already checked by
    ``provisio.oauth.requests``)."""
    headers = request.headers.getlist("authorization")
    form = request.form
    if len(headers) > 1:
        raise InvalidRequestError("Send at most one Authorization header.")
    if headers:
        if "client_secret" in form:
            raise InvalidRequestError(TWO_METHODS)
        credentials = _basic(headers[0])
        if form.get("client_id", credentials.client_id) != credentials.client_id:
            raise InvalidRequestError("The client_id in the body is not the one in the Authorization header.")
        return credentials
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if not client_id or not secret:
        raise ClientAuthenticationFailed(REQUIRED)
    return Credentials("client_secret_post", client_id, secret)


def authenticate(
    session: Session, request: StarletteOAuth2Request, methods: list[str], endpoint: str
) -> Client:
    credentials = presented(request)
    client = load_client(session, credentials.client_id, with_redirect_uris=False)
    if client is None:
        matches = secret_accepted(credentials.secret, _NO_CLIENT_HASH, None)
    else:
        matches = client.check_client_secret(credentials.secret)
    method = credentials.method
    if (
        client is None
        or not matches
        or not (method in methods and client.check_endpoint_auth_method(method, endpoint))
    ):
        raise ClientAuthenticationFailed(FAILED)
    request.auth_method = method
    return client
