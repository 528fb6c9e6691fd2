"""Trailing slashes on SCIM URLs (``/Users/``, ``/Users/{id}/``) mean the same resource without them.

Microsoft's test collection and some IdP configurations end the Tenant URL with ``/``, which then
doubles into ``…/Users/?filter=…``. Rewriting the path before routing answers them like the canonical
URL instead of with a redirect (which some clients do not follow for POST/PATCH).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

SCIM_PREFIX = "/scim/v2/"


def app_path(scope: Scope) -> str:
    """The request path below the app's mount point (``root_path``, when served under a prefix)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class ScimTrailingSlashMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            below = app_path(scope)
            if below.startswith(SCIM_PREFIX) and len(below) > len(SCIM_PREFIX) and path.endswith("/"):
                stripped = path.rstrip("/")
                scope = dict(scope, path=stripped, raw_path=stripped.encode())
        await self.app(scope, receive, send)
