"""Discovery documents (RFC 7644 §4): what this server supports, rendered from the schema catalogue."""

from __future__ import annotations

import copy
from typing import Any

from provisio.config import Settings
from provisio.scim.schemas import (
    ENTERPRISE_USER_SCHEMA,
    RESOURCE_TYPE_SCHEMA,
    SPC_SCHEMA,
    USER_SCHEMA,
    ResourceSchema,
    user_schema,
)

DOCS_URL = "https://github.com/provisio/provisio#scim-api"


def service_provider_config(settings: Settings, base: str) -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": DOCS_URL,
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": settings.scim_max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        # RFC 9865 §4: both pagination methods; index pagination stays the default for older clients.
        "pagination": {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "defaultPageSize": settings.scim_max_results,
            "maxPageSize": settings.scim_max_results,
            "cursorTimeout": settings.scim_cursor_ttl_seconds,
        },
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "An OAuth 2.0 access token, or the workspace's long-lived SCIM bearer token.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A member of the workspace",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_USER_SCHEMA, "required": False}],
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/User"},
        }
    ]


def _schema_resource(doc: dict[str, Any], base: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{doc['id']}"}
    return out


def schemas(base: str, schema: ResourceSchema | None = None) -> list[dict[str, Any]]:
    schema = schema or user_schema()
    return [_schema_resource(d, base) for d in schema.documents]
