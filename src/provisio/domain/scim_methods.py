"""The ways an identity provider can authenticate to a workspace's SCIM API."""

from __future__ import annotations

from enum import StrEnum


class ScimMethod(StrEnum):
    AUTHORIZATION_CODE = "authorization_code"  # Okta
    CLIENT_CREDENTIALS = "client_credentials"  # Microsoft Entra
    BEARER = "bearer"  # a long-lived token, for IdPs that support nothing else

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS = {
    ScimMethod.AUTHORIZATION_CODE: "OAuth 2.0 Authorization Code",
    ScimMethod.CLIENT_CREDENTIALS: "OAuth 2.0 Client Credentials",
    ScimMethod.BEARER: "Long-lived bearer token (legacy)",
}

OAUTH_METHODS = frozenset({ScimMethod.AUTHORIZATION_CODE, ScimMethod.CLIENT_CREDENTIALS})
