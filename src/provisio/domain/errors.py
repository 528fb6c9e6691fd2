"""Domain failures. Protocol layers map ``kind`` to their own status codes (SCIM: see scim/responses.py)."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # uniqueness
    PRECONDITION = "precondition"  # If-Match / version mismatch
    FORBIDDEN = "forbidden"  # e.g. no free seat
    INVALID = "invalid"  # a value the rules refuse


class DomainError(Exception):
    def __init__(self, kind: Kind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
