"""SCIM HTTP responses: ``application/scim+json`` bodies serialised with orjson, and error mapping."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from provisio.domain.errors import DomainError, Kind
from provisio.scim.errors import INVALID_VALUE, UNIQUENESS, ScimError

SCIM_MEDIA_TYPE = "application/scim+json"


class ScimResponse(Response):
    media_type = SCIM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: ScimError, headers: dict[str, str] | None = None) -> ScimResponse:
    return ScimResponse(error.to_body(), status_code=error.status, headers=headers)


_DOMAIN_STATUS = {
    Kind.NOT_FOUND: (404, None),
    Kind.CONFLICT: (409, UNIQUENESS),
    Kind.PRECONDITION: (412, None),
    Kind.FORBIDDEN: (403, None),
    Kind.INVALID: (400, INVALID_VALUE),
}


def from_domain(error: DomainError) -> ScimError:
    status, scim_type = _DOMAIN_STATUS[error.kind]
    return ScimError(status, error.detail, scim_type, error.reason)
