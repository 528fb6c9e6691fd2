"""The authorization server: Authlib's ``AuthorizationServer`` bound to one synchronous ``Session``.

One instance serves one HTTP request, inside ``AsyncSession.run_sync`` (see ``bridge``); it is cheap to
build and shares nothing between requests.
"""

from __future__ import annotations

from typing import Any

import orjson
from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from sqlalchemy.orm import Session
from starlette.responses import Response

from provisio.config import Settings
from provisio.oauth import client_auth, token_store
from provisio.oauth.clients import SCIM_SCOPE, Client, load_client, require_enabled, require_not_disabled
from provisio.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from provisio.oauth.requests import StarletteOAuth2Request
from provisio.oauth.revocation import RevocationEndpoint


class ProvisioAuthorizationServer(AuthorizationServer):
    def __init__(self, session: Session, settings: Settings) -> None:
        super().__init__(scopes_supported=[SCIM_SCOPE])
        self.session = session
        self.settings = settings
        ttl = settings.oauth_access_token_ttl_seconds
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                token_store.new_access_token, token_store.new_refresh_token, lambda client, grant_type: ttl
            ),
        )
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=False)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(RevocationEndpoint)

    def query_client(self, client_id: str) -> Client | None:
        return load_client(self.session, client_id)

    def authenticate_client(
        self, request: StarletteOAuth2Request, methods: list[str], endpoint: str = "token"
    ) -> Client:
        """Token and revocation endpoints: the client's secret first, then whether its workspace is
        disabled (the token endpoint only: revoking a token only takes access away), then whether SCIM
        is turned on."""
        client = client_auth.authenticate(self.session, request, methods, endpoint)
        if endpoint == "token":
            require_not_disabled(client)
        return require_enabled(client)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        client: Client = request.client
        grant_type = request.payload.grant_type
        if grant_type == "authorization_code":
            lineage = token_store.Lineage(
                grant_type, admin_id=request.user.id, code_id=request.authorization_code.id
            )
        elif grant_type == "refresh_token":
            parent: token_store.TokenRecord = request.refresh_token
            lineage = token_store.Lineage(
                grant_type, admin_id=parent.admin_id, family_id=parent.family_id, parent_id=parent.id
            )
        else:
            lineage = token_store.Lineage(grant_type)
        token_store.save_token(
            self.session,
            token,
            client_pk=client.pk,
            workspace_id=client.workspace_id,
            lineage=lineage,
            refresh_ttl_seconds=self.settings.oauth_refresh_token_ttl_seconds,
        )

    def validate_requested_scope(self, scope: str | None) -> None:
        """Requested scopes are never refused: the granted scope is always ``scim`` (see ``Client``)."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request  # already adapted by ``provisio.oauth.requests``

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        return oauth_response(status, body, headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal system; logging happens in the routes."""


def oauth_response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    content = orjson.dumps(body) if isinstance(body, dict) else (body or b"")
    response = Response(content=content, status_code=status)
    for name, value in headers:
        response.headers[name] = value
    if status >= 300 and "cache-control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def error_response(error: OAuth2Error) -> Response:
    """An OAuth error raised before there is a server to hand it to (the request did not parse)."""
    return oauth_response(*error())
