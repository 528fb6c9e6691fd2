"""Domain failures. Protocol layers map ``kind`` to their own status codes (SCIM: see scim/responses.py)."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # uniqueness
    PRECONDITION = "precondition"  # If-Match / version mismatch
    FORBIDDEN = "forbidden"  # e.g. no free seat
    INVALID = "invalid"  # a value the rules refuse


class Reason(StrEnum):
    """Why a rule refused, for machines (failure e-mails tell which failures block every user)."""

    NO_FREE_SEAT = "no_free_seat"  # no free seat and auto-charge off
    AUTO_CHARGE_MAXIMUM = "auto_charge_maximum"  # no free seat and auto-charge at its maximum
    NO_VERIFIED_DOMAIN = "no_verified_domain"  # the workspace has no verified domain at all
    DOMAIN_NOT_VERIFIED = "domain_not_verified"  # the user's e-mail is outside the verified domains
    NO_EMAIL = "no_email"  # the user has no e-mail, and only verified domains are accepted
    OTHER_WORKSPACE = "other_workspace"  # the person is active in another workspace
    USER_NAME_TAKEN = "user_name_taken"
    VALUE_TOO_LONG = "value_too_long"
    WORKSPACE_DISABLED = "workspace_disabled"  # the host application disabled the workspace


class DomainError(Exception):
    def __init__(self, kind: Kind, detail: str, reason: Reason | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.reason = reason
