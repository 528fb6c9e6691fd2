"""What the Workspace settings > Advanced > SCIM page shows, gathered from the domain services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.config import Settings
from provisio.db.models import Workspace
from provisio.domain import redirect_uris as redirect_service
from provisio.domain import scim_credentials as credential_service
from provisio.domain.scim_credentials import IssuedCredentials
from provisio.domain.scim_methods import LABELS, OAUTH_METHODS, ScimMethod
from provisio.domain.scim_settings import scim_urls

METHOD_HINTS = {
    ScimMethod.AUTHORIZATION_CODE: "For Okta. Okta signs in here once; a workspace admin allows access.",
    ScimMethod.CLIENT_CREDENTIALS: "For Microsoft Entra ID (“OAuth2 client credentials grant”).",
    ScimMethod.BEARER: "Only for identity providers that support neither OAuth option.",
}

NOTICES = {
    "enabled": "SCIM provisioning is on.",
    "disabled": "SCIM provisioning is off: identity providers are refused until you turn it on again.",
    "method": "Authentication method saved. Credentials of the previous method no longer work.",
    "method-unchanged": "The authentication method is unchanged.",
    "uri-added": "Redirect URI added.",
    "uri-removed": "Redirect URI removed.",
    "license": "License settings saved.",
}


@dataclass(frozen=True)
class MethodChoice:
    value: str
    label: str
    hint: str
    checked: bool


async def scim_page_context(
    session: AsyncSession,
    settings: Settings,
    workspace: Workspace,
    *,
    notice: str | None = None,
    error: str | None = None,
    error_field: str | None = None,
    issued: IssuedCredentials | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    method = ScimMethod(workspace.scim_auth_method)
    client = await credential_service.live_client(session, workspace.id)
    return {
        "workspace": workspace,
        "urls": scim_urls(settings, workspace.key),
        "method": method,
        "is_oauth": method in OAUTH_METHODS,
        "methods": [
            MethodChoice(m.value, LABELS[m], METHOD_HINTS[m], m is method)
            for m in (ScimMethod.AUTHORIZATION_CODE, ScimMethod.CLIENT_CREDENTIALS, ScimMethod.BEARER)
        ],
        "redirect_uris": await redirect_service.list_redirect_uris(session, workspace.id),
        "client": client if client is not None and client.grant_method == method.value else None,
        "has_bearer_token": await credential_service.has_live_bearer_token(session, workspace.id),
        "issued": issued,
        "notice": NOTICES.get(notice or ""),
        "error": error,
        "error_field": error_field,
        "values": values or {},
        "page_path": f"/console/workspaces/{workspace.key}/settings/advanced",
    }
