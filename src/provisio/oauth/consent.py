"""The authorization endpoint's decisions, run inside the bridge: validate the request (Authlib), find
the workspace it is for, and, once a workspace admin has answered, issue the code or the refusal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from provisio.db.models import OAuthClient, Workspace
from provisio.oauth.clients import SCIM_OFF, WORKSPACE_DISABLED, Client
from provisio.oauth.grants import Grantor
from provisio.oauth.requests import StarletteOAuth2Request
from provisio.oauth.server import ProvisioAuthorizationServer

KNOWN_IDPS = {
    "okta.com": "Okta",
    "okta-emea.com": "Okta",
    "oktapreview.com": "Okta",
    "okta-gov.com": "Okta",
}


@dataclass(frozen=True)
class ConsentRequest:
    client_id: str
    workspace_id: str
    workspace_key: str
    workspace_name: str
    redirect_uri: str
    scope: str

    @property
    def redirect_host(self) -> str:
        return urlsplit(self.redirect_uri).hostname or ""

    @property
    def idp_name(self) -> str:
        return idp_name(self.redirect_uri)


def idp_name(redirect_uri: str) -> str:
    """The identity provider a redirect URI belongs to ("Okta"), else its host."""
    host = urlsplit(redirect_uri).hostname or ""
    known = (name for domain, name in KNOWN_IDPS.items() if host == domain or host.endswith("." + domain))
    return next(known, host)


@dataclass(frozen=True)
class AskingClient:
    """Who an authorization request comes from, for the sign-in page in front of the consent page."""

    idp: str
    workspace_name: str


# The authorization endpoint's paths: ``/oauth/{workspace key}/authorize`` and ``/oauth/authorize``.
_AUTHORIZE_PATH = re.compile(r"/oauth/(?:(?P<key>[^/]+)/)?authorize")


async def asking_client(session: AsyncSession, target: str) -> AskingClient | None:
    """The client and workspace of the authorization request at ``target`` (a path with its query), if it
    names a live client of that workspace; None for anything else (nothing is said about a client that
    does not exist)."""
    parts = urlsplit(target)
    match = _AUTHORIZE_PATH.fullmatch(parts.path)
    if match is None:
        return None
    params = parse_qs(parts.query)
    client_id = (params.get("client_id") or [""])[0]
    if not client_id or len(client_id) > 255:
        return None
    row = (
        await session.execute(
            select(Workspace.key, Workspace.name)
            .join(OAuthClient, OAuthClient.workspace_id == Workspace.id)
            .where(OAuthClient.client_id == client_id, OAuthClient.revoked_at.is_(None))
        )
    ).first()
    if row is None or (match.group("key") is not None and match.group("key") != row.key):
        return None
    redirect_uri = (params.get("redirect_uri") or [""])[0]
    return AskingClient(idp=idp_name(redirect_uri) or "An identity provider", workspace_name=row.name)


@dataclass(frozen=True)
class InvalidAuthorization:
    """An error that must not be sent to the redirect URI (unknown client or unregistered URI,
    RFC 6749 §4.1.2.1): shown to the person in the browser instead."""

    error: str
    description: str


@dataclass(frozen=True)
class NotAdmin:
    workspace_name: str


Outcome = ConsentRequest | InvalidAuthorization | NotAdmin | Response


def _failure(
    server: ProvisioAuthorizationServer, request: StarletteOAuth2Request, err: OAuth2Error
) -> Outcome:
    if err.redirect_uri:
        response: Response = server.handle_error_response(request, err)
        return response
    return InvalidAuthorization(err.error or "invalid_request", err.description or "")


def _refused(server: ProvisioAuthorizationServer, request: StarletteOAuth2Request) -> Outcome:
    """A malformed or repeated parameter: an error redirect when the client and its redirect URI are
    sound, else the error page (RFC 6749 §4.1.2.1)."""
    err = InvalidRequestError(f"Malformed or repeated parameter: {', '.join(request.refused)}.")
    payload = request.payload
    client = server.query_client(payload.client_id) if payload.client_id else None
    if client is not None and not {"client_id", "redirect_uri"} & set(request.refused):
        uri = payload.redirect_uri
        if not uri:
            err.redirect_uri = client.get_default_redirect_uri()
        elif client.check_redirect_uri(uri):
            err.redirect_uri = uri
        err.state = payload.state  # left out, so not echoed, when it was the malformed one
    return _failure(server, request, err)


def validate(
    server: ProvisioAuthorizationServer, request: StarletteOAuth2Request, workspace_key: str | None
) -> tuple[object, ConsentRequest] | Outcome:
    """Authlib's validated grant and what the consent page shows, or why there is no consent to ask for.

    Whether the signed-in person may answer is the caller's check (``admins.is_workspace_admin``)."""
    if request.refused:
        return _refused(server, request)
    try:
        grant = server.get_consent_grant(request)
    except OAuth2Error as err:
        return _failure(server, request, err)
    client: Client = grant.client
    if workspace_key is not None and client.workspace_key != workspace_key:
        return InvalidAuthorization(
            "invalid_client",
            "This client ID belongs to another workspace than the Authorization URL. Copy both from the same "
            "workspace's settings.",
        )
    if client.disabled:
        # The client and its redirect URI are sound, so the refusal goes back to the identity provider
        # (RFC 6749 §4.1.2.1), which shows its admin why: no code is issued and nothing is stored.
        refused = AccessDeniedError(
            description=WORKSPACE_DISABLED, redirect_uri=grant.redirect_uri, state=request.payload.state
        )
        return _failure(server, request, refused)
    if not client.scim_enabled:
        return InvalidAuthorization("invalid_client", SCIM_OFF)
    consent = ConsentRequest(
        client_id=client.client_id,
        workspace_id=client.workspace_id,
        workspace_key=client.workspace_key,
        workspace_name=client.workspace_name,
        redirect_uri=grant.redirect_uri,
        scope=request.scope or "",
    )
    return grant, consent


def respond(
    server: ProvisioAuthorizationServer,
    request: StarletteOAuth2Request,
    grant: object,
    grantor: Grantor,
    allow: bool,
) -> Response:
    """Issue a code (allow) or ``access_denied`` (deny) to the validated redirect URI."""
    response: Response = server.create_authorization_response(
        request, grant_user=grantor if allow else None, grant=grant
    )
    return response
