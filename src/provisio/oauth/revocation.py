"""Token revocation (RFC 7009), by the client the token was issued to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint

from provisio.oauth import token_store
from provisio.oauth.clients import AUTH_METHODS

if TYPE_CHECKING:
    from provisio.oauth.server import ProvisioAuthorizationServer


class UnsupportedTokenTypeError(OAuth2Error):
    """RFC 7009 §2.2.1 adds this error to RFC 6749 §5.2's, so it is a 400 like them (Authlib's is a 401
    meant for resource servers)."""

    error = "unsupported_token_type"


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)
    server: ProvisioAuthorizationServer

    def check_params(self, request: Any, client: Any) -> None:
        hint = request.form.get("token_type_hint")
        if hint and hint not in self.SUPPORTED_TOKEN_TYPES:
            raise UnsupportedTokenTypeError("token_type_hint must be access_token or refresh_token.")
        super().check_params(request, client)

    def query_token(self, token_string: str, token_type_hint: str | None) -> token_store.TokenRecord | None:
        return token_store.find_token(self.server.session, token_string, token_type_hint)

    def revoke_token(self, token: token_store.TokenRecord, request: Any) -> None:
        token_store.revoke(self.server.session, token)
