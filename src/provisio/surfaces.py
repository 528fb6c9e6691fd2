"""Which kind of client a path serves, so every answer that is made before (or instead of) a route's
own handler speaks that client's language: a SCIM Error, OAuth error JSON, or a page for a person."""

from __future__ import annotations

import enum


class Surface(enum.Enum):
    SCIM = "scim"  # identity providers: SCIM Error documents (RFC 7644 §3.12)
    OAUTH_CLIENT = "oauth-client"  # OAuth clients: RFC 6749 §5.2 error JSON
    PAGE = "page"  # a person's browser: the console and the OAuth authorization (consent) pages
    API = "api"  # the management API (/api/v1): RFC 9457 problem documents
    OTHER = "other"  # health checks, metrics, the API docs


# Endpoints that OAuth clients call directly; the rest of /oauth/ is the authorization endpoint, which
# a browser opens.
_OAUTH_CLIENT_PATHS = ("/oauth/token", "/oauth/revoke")


def surface(path: str) -> Surface:
    if path == "/scim" or path.startswith("/scim/"):
        return Surface.SCIM
    if path in _OAUTH_CLIENT_PATHS or path.startswith("/.well-known/"):
        return Surface.OAUTH_CLIENT
    if path == "/console" or path.startswith(("/console/", "/oauth/")):
        return Surface.PAGE
    if path == "/api/v1" or path.startswith("/api/v1/"):
        return Surface.API
    return Surface.OTHER
