"""SCIM errors (RFC 7644 §3.12): the one exception type the domain and the protocol layer raise."""

from __future__ import annotations

import math
from typing import Any

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"

# scimType values RFC 7644 §3.12 defines (400 unless said otherwise).
INVALID_FILTER = "invalidFilter"
TOO_MANY = "tooMany"
UNIQUENESS = "uniqueness"  # 409
MUTABILITY = "mutability"
INVALID_SYNTAX = "invalidSyntax"
INVALID_PATH = "invalidPath"
NO_TARGET = "noTarget"
INVALID_VALUE = "invalidValue"
INVALID_VERS = "invalidVers"
SENSITIVE = "sensitive"
# RFC 9865 (cursor pagination).
INVALID_CURSOR = "invalidCursor"
EXPIRED_CURSOR = "expiredCursor"


class ScimError(Exception):
    """A failure the client is told about, with a detail a person can act on."""

    def __init__(
        self, status: int, detail: str, scim_type: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        # The domain rule's machine-readable reason (``provisio.domain.errors.Reason``), never sent.
        self.reason = reason

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body

    def __repr__(self) -> str:
        return f"ScimError({self.status}, {self.detail!r}, {self.scim_type!r})"


class MethodNotAllowed(ScimError):
    """405, with the methods the URL allows (for the ``Allow`` header)."""

    def __init__(self, detail: str, allow: str) -> None:
        super().__init__(405, detail)
        self.allow = allow


class RateLimited(ScimError):
    """429: the workspace spent its request budget; ``retry_after`` is the Retry-After header, whole
    seconds (at least 1: RFC 9110 counts in seconds, and 0 would invite an immediate retry)."""

    def __init__(self, wait_seconds: float, per_second: float, burst: int) -> None:
        self.retry_after = max(1, math.ceil(wait_seconds))
        super().__init__(
            429,
            f"Too many requests: this workspace may send {per_second:g} SCIM requests per second (bursts of "
            f"{burst}), across all its clients. Retry after {self.retry_after} s (the Retry-After header).",
        )


INTERNAL_ERROR = ScimError(500, "The server failed to handle this request; it has been logged. Retry later.")
# The database could not answer (sent with Retry-After, see provisio.db.availability).
SERVICE_UNAVAILABLE = ScimError(503, "The database is unavailable for the moment. Retry the request shortly.")


def bad_request(detail: str, scim_type: str = INVALID_VALUE) -> ScimError:
    return ScimError(400, detail, scim_type)


def not_found(detail: str) -> ScimError:
    return ScimError(404, detail)
