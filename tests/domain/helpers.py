"""SCIM bodies as Okta and Entra send them, and unique names, for the seat and domain tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def unique_domain(prefix: str = "corp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}.test"


def okta_user(email: str, *, active: bool = True, given: str = "Ada") -> dict[str, Any]:
    """Okta's custom-app shape (POST and PUT): userName is the e-mail."""
    return {
        "schemas": [USER],
        "userName": email,
        "name": {"givenName": given, "familyName": "Lovelace"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"{given} Lovelace",
        "active": active,
    }


def entra_active(value: bool) -> dict[str, Any]:
    """Entra's PATCH: capitalised op and a string boolean."""
    return {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": str(value)}]}


def entra_email(email: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH],
        "Operations": [{"op": "Replace", "path": 'emails[type eq "work"].value', "value": email}],
    }


def okta_patch_active(value: bool) -> dict[str, Any]:
    """Okta catalogue apps: a no-path replace with a real boolean."""
    return {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": value}}]}


def scim_error(r: httpx.Response, status: int, scim_type: str | None = None) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return str(body["detail"])
