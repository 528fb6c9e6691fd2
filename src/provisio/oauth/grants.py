"""Authlib's grants, given storage. Every callback reaches the database through ``self.server.session``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge

from provisio.oauth import codes, token_store
from provisio.oauth.clients import AUTH_METHODS

if TYPE_CHECKING:
    from provisio.oauth.server import ProvisioAuthorizationServer


@dataclass(frozen=True)
class Grantor:
    """The workspace admin who approved an authorization (None once that admin is deleted)."""

    id: str | None
    email: str = ""


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
    server: ProvisioAuthorizationServer

    def generate_authorization_code(self) -> str:
        return codes.new_code()

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        codes.save_code(
            self.server.session,
            code,
            request.client,
            admin_id=request.user.id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            ttl_seconds=self.server.settings.oauth_code_ttl_seconds,
        )

    def query_authorization_code(self, code: str, client: Any) -> codes.CodeRecord | None:
        return codes.consume_code(self.server.session, code, client)

    def delete_authorization_code(self, authorization_code: codes.CodeRecord) -> None:
        """Nothing to do: ``consume_code`` already marked the code used when it was presented."""

    def authenticate_user(self, authorization_code: codes.CodeRecord) -> Grantor:
        return Grantor(id=authorization_code.admin_id)


class S256CodeChallenge(CodeChallenge):
    """PKCE (RFC 7636), optional for the confidential clients here but enforced whenever a challenge is
    sent; only S256 is accepted (RFC 9700 §2.1.1: ``plain`` would leak the verifier with the request)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Unsupported 'code_challenge_method': use S256.")
        super().validate_code_challenge(grant, redirect_uri)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation
    server: ProvisioAuthorizationServer

    def authenticate_refresh_token(self, refresh_token: str) -> token_store.TokenRecord | None:
        return token_store.refresh_token_for_use(
            self.server.session,
            refresh_token,
            self.request.client.pk,
            grace_seconds=self.server.settings.oauth_refresh_grace_seconds,
        )

    def authenticate_user(self, refresh_token: token_store.TokenRecord) -> Grantor:
        return Grantor(id=refresh_token.admin_id)

    def revoke_old_credential(self, refresh_token: token_store.TokenRecord) -> None:
        try:
            token_store.complete_rotation(self.server.session, refresh_token)
        except token_store.RotationConflict:
            raise InvalidGrantError() from None  # the family, new token included, is revoked


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
