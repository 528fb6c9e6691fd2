"""Token revocation (RFC 7009), by the client the token was issued to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint

from provisio.oauth import token_store
from provisio.oauth.clients import AUTH_METHODS

if TYPE_CHECKING:
    from provisio.oauth.server import ProvisioAuthorizationServer


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)
    server: ProvisioAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> token_store.TokenRecord | None:
        return token_store.find_token(self.server.session, token_string, token_type_hint)

    def revoke_token(self, token: token_store.TokenRecord, request: Any) -> None:
        token_store.revoke(self.server.session, token)
