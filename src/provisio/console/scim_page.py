"""What the Workspace settings > Advanced > SCIM page shows, gathered from the domain services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from provisio.config import Settings
from provisio.db.models import Workspace
from provisio.domain import redirect_uris as redirect_service
from provisio.domain import scim_credentials as credential_service
from provisio.domain.connection_status import connection_status
from provisio.domain.scim_credentials import (
    CLIENT_SECRET_PREFIX,
    ROTATION_DURATIONS,
    IssuedCredentials,
    RotationWindow,
    masked,
    previous_secret,
)
from provisio.domain.scim_methods import LABELS, OAUTH_METHODS, ScimMethod
from provisio.domain.scim_settings import ScimUrls, scim_urls

METHOD_HINTS = {
    ScimMethod.AUTHORIZATION_CODE: "For Okta. Okta signs in here once; a workspace admin allows access.",
    ScimMethod.CLIENT_CREDENTIALS: "For Microsoft Entra ID (“OAuth2 client credentials grant”).",
    ScimMethod.BEARER: "Only for identity providers that support neither OAuth option "
    "(Microsoft Entra: “Secret Token”).",
}

NOTICES = {
    "enabled": "SCIM provisioning is on.",
    "disabled": "SCIM provisioning is off: identity providers are refused until you turn it on again.",
    "method": "Authentication method saved. Credentials of the previous method no longer work.",
    "method-unchanged": "The authentication method is unchanged.",
    "uri-added": "Redirect URI added.",
    "uri-removed": "Redirect URI removed.",
    "license": "License settings saved.",
    "generated": "Credentials generated.",
    "regenerated": "Credentials regenerated.",
}

# Who stops provisioning when the method's credentials change: the identity provider it is meant for.
IDP_NAMES = {
    ScimMethod.AUTHORIZATION_CODE: "Okta",
    ScimMethod.CLIENT_CREDENTIALS: "Microsoft Entra ID",
    ScimMethod.BEARER: "Your identity provider",
}
# What the admin has to do in the identity provider with new credentials of each method.
IDP_STEPS = {
    ScimMethod.AUTHORIZATION_CODE: "paste the new client secret in Okta (Provisioning > Integration) "
    "and click Authenticate again",
    ScimMethod.CLIENT_CREDENTIALS: "paste the new client secret in Entra (Provisioning > Admin Credentials) "
    "and click Test Connection",
    ScimMethod.BEARER: "paste the new token in your identity provider",
}


@dataclass(frozen=True)
class IdpField:
    """A value the admin copies into the identity provider, with the name the IdP's form gives it."""

    id: str
    label: str
    value: str
    hint: str


# Where each method's values go, in the words of the form the admin fills in: Okta's Provisioning >
# Integration (OAuth 2, Authorization Code), Entra's Provisioning > Admin Credentials (*OAuth2 client
# credentials grant*, or *Secret Token* for a long-lived token). The Authorization URL (and the redirect
# URIs) exist only for Authorization Code; a bearer token needs no Token URL.
IDP_FORMS = {
    ScimMethod.AUTHORIZATION_CODE: "Okta (Provisioning > Integration)",
    ScimMethod.CLIENT_CREDENTIALS: "Microsoft Entra (Provisioning > Admin Credentials)",
    ScimMethod.BEARER: "your identity provider (Microsoft Entra: Provisioning > Admin Credentials)",
}
IDP_FIELD_NAMES: dict[ScimMethod, dict[str, str]] = {
    ScimMethod.AUTHORIZATION_CODE: {
        "authorization-url": "Authorization endpoint URI",
        "tenant-url": "SCIM connector base URL",
        "token-url": "Access token endpoint URI",
        "client-id": "Client ID",
        "client-secret": "Client Secret",
    },
    ScimMethod.CLIENT_CREDENTIALS: {
        "tenant-url": "Tenant URL",
        "token-url": "Token Endpoint",
        "client-id": "Client Identifier",
        "client-secret": "Client Secret",
    },
    ScimMethod.BEARER: {"tenant-url": "Tenant URL", "bearer-token": "Secret Token"},
}
FIELD_LABELS = {
    "authorization-url": "Authorization URL",
    "tenant-url": "Tenant URL",
    "token-url": "Token URL",
    "client-id": "Client ID",
    "client-secret": "Client Secret",
    "bearer-token": "Bearer token",
}


def idp_hint(method: ScimMethod, field: str) -> str:
    """``In Okta: “SCIM connector base URL”.``: the field of the IdP's form that takes ``field``."""
    idp = "Microsoft Entra" if method is ScimMethod.BEARER else IDP_NAMES[method].removesuffix(" ID")
    return f"In {idp}: “{IDP_FIELD_NAMES[method][field]}”."


def url_fields(method: ScimMethod, urls: ScimUrls) -> list[IdpField]:
    values = {
        "authorization-url": urls.authorization_url,
        "tenant-url": urls.tenant_url,
        "token-url": urls.token_url,
    }
    return [
        IdpField(field, FIELD_LABELS[field], values[field], idp_hint(method, field))
        for field in IDP_FIELD_NAMES[method]
        if field in values
    ]


ROTATION_LABELS = {
    RotationWindow.NONE: "No: the current {what} stops now",
    RotationWindow.HOUR: "Keep the current {what} working for 1 hour",
    RotationWindow.DAY: "Keep the current {what} working for 24 hours",
}


def relative(moment: datetime, now: datetime) -> str:
    """``3 hours ago``, ``in 5 days``: beside the exact time, for the connection status."""
    seconds = int((now - moment).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            text = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"


def credential_label(credential: str | None) -> str | None:
    """How the log names a credential (``<method>:<client ID or token id>``), in the page's words."""
    if not credential:
        return None
    method, _, ident = credential.partition(":")
    try:
        chosen = ScimMethod(method)
    except ValueError:
        return credential
    if chosen is ScimMethod.BEARER:
        return f"bearer token {ident[:8]}"
    return f"client {ident}"


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
    if client is not None and client.grant_method != method.value:
        client = None
    return {
        "workspace": workspace,
        "url_fields": url_fields(method, scim_urls(settings, workspace.key)),
        "idp_form": IDP_FORMS[method],
        "hints": {field: idp_hint(method, field) for field in IDP_FIELD_NAMES[method]},
        "method": method,
        "is_oauth": method in OAUTH_METHODS,
        "methods": [
            MethodChoice(m.value, LABELS[m], METHOD_HINTS[m], m is method)
            for m in (ScimMethod.AUTHORIZATION_CODE, ScimMethod.CLIENT_CREDENTIALS, ScimMethod.BEARER)
        ],
        "redirect_uris": await redirect_service.list_redirect_uris(session, workspace.id),
        "client": client,
        "secret_masked": masked(CLIENT_SECRET_PREFIX, client.secret_hint) if client else None,
        "previous_secret": previous_secret(client) if client else None,
        "has_bearer_token": await credential_service.has_live_bearer_token(session, workspace.id),
        "replaced_token_ends": await credential_service.replaced_bearer_expiry(session, workspace.id)
        if method is ScimMethod.BEARER
        else None,
        "connection": await connection_status(session, workspace),
        "relative": relative,
        "credential_label": credential_label,
        "log_path": f"/console/workspaces/{workspace.key}/log",
        "issued": issued,
        "notice": NOTICES.get(notice or ""),
        "error": error,
        "error_field": error_field,
        "values": values or {},
        "page_path": f"/console/workspaces/{workspace.key}/settings/advanced",
    }


@dataclass(frozen=True)
class WindowChoice:
    value: str
    label: str
    checked: bool


async def confirm_context(
    session: AsyncSession, workspace: Workspace, *, new_method: ScimMethod | None = None
) -> dict[str, Any]:
    """The confirmation page of a change that stops the credentials in use: regenerating them, or
    switching to ``new_method``. It says what stops working, and posts the change with ``confirm=yes``."""
    method = ScimMethod(workspace.scim_auth_method)
    idp, steps = IDP_NAMES[method], IDP_STEPS[method]
    page_path = f"/console/workspaces/{workspace.key}/settings/advanced"
    live = await credential_service.has_live_credentials(session, workspace)
    context: dict[str, Any] = {"workspace": workspace, "page_path": page_path, "live": live}
    if new_method is not None:
        context.update(
            title=f"Switch to {LABELS[new_method]}?",
            consequence=f"The current {LABELS[method]} credentials and every token issued with them stop "
            f"working at once: {idp} will stop provisioning until you set it up again with credentials of "
            "the new method, generated on the next page.",
            action=f"{page_path}/scim/method",
            fields={"method": new_method.value},
            button="Switch method",
            what="",
            windows=[],
        )
        return context
    is_oauth = method in OAUTH_METHODS
    what = "secret" if is_oauth else "token"
    context.update(
        title="Regenerate the client secret?" if is_oauth else "Regenerate the bearer token?",
        consequence=f"{idp} will stop provisioning until you {steps}: the current {what} stops working "
        "when the rotation window you choose below ends (at once with none"
        + (", and so does every token issued with it). The client ID stays the same." if is_oauth else ")."),
        action=f"{page_path}/scim/credentials",
        fields={},
        button="Regenerate Credentials" if is_oauth else "Regenerate token",
        what=what,
        windows=[
            WindowChoice(w.value, ROTATION_LABELS[w].format(what=what), w is RotationWindow.NONE)
            for w in ROTATION_DURATIONS
        ],
    )
    return context
