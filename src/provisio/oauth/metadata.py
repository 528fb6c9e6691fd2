"""Authorization server metadata (RFC 8414) at ``/.well-known/oauth-authorization-server``.

Built with Authlib's model, whose ``validate()`` the tests run (it insists on an https issuer, which a
development server on http://127.0.0.1 is not).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from provisio.config import Settings
from provisio.oauth.clients import AUTH_METHODS, SCIM_SCOPE


def server_metadata(settings: Settings) -> dict[str, Any]:
    base = settings.public_base
    metadata = AuthorizationServerMetadata(
        {
            "issuer": base,
            # Each workspace also has its own Authorization URL, {base}/oauth/{workspace}/authorize, shown
            # in its settings; this one finds the workspace from the client_id.
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": settings.token_url,
            "revocation_endpoint": f"{base}/oauth/revoke",
            "scopes_supported": [SCIM_SCOPE],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "code_challenge_methods_supported": ["S256"],
            "service_documentation": f"{base}/console/",
        }
    )
    return dict(metadata)
