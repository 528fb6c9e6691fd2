"""The API's request and response bodies, as the OpenAPI document at /api/docs shows them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from provisio.domain.scim_methods import ScimMethod

_SURROGATE = re.compile("[\ud800-\udfff]")


class Body(BaseModel):
    # A field the API does not know is refused, so a misspelt setting is not silently ignored.
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Neither database can store NUL in text, and a lone surrogate is not UTF-8: the client's mistake.
        if isinstance(value, str) and ("\x00" in value or _SURROGATE.search(value)):
            raise ValueError("must not contain NUL characters or lone surrogates")
        return value


class WorkspaceCreate(Body):
    name: str = Field(min_length=1, max_length=200, description="Display name.")
    key: str | None = Field(
        None, max_length=63, description="URL-safe key of the Tenant URL (default: made from the name)."
    )
    seats: int = Field(0, ge=0, le=1_000_000, description="Seats bought at creation (a ledger entry).")
    allow_other_domains: bool = Field(False, description="Accept members outside the verified domains.")


class WorkspaceUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=200, description="New display name.")
    allow_other_domains: bool | None = Field(None, description="Accept members outside the verified domains.")


class Workspace(BaseModel):
    id: str
    key: str = Field(description="The workspace's key: in every URL of this API and in its Tenant URL.")
    name: str
    tenant_url: str = Field(description="The SCIM base URL the customer's identity provider is given.")
    created_at: datetime
    scim_enabled: bool
    scim_method: ScimMethod
    allow_other_domains: bool
    seats_purchased: int
    members: int = Field(description="Members SCIM can see (active or not).")
    disabled: bool = Field(
        description="Disabled by the host application: SCIM and new OAuth tokens are refused and nothing "
        "can be changed until it is enabled again; everything is kept."
    )
    disabled_at: datetime | None = Field(description="Since when it is disabled; null while enabled.")


class WorkspacePage(BaseModel):
    items: list[Workspace]
    next_cursor: str | None = Field(description="Pass as `after` for the next page; null on the last.")


class Member(BaseModel):
    id: str
    userName: str
    externalId: str | None
    active: bool
    emails: list[dict[str, Any]]
    name: dict[str, Any] | None
    enterprise: dict[str, Any] | None = Field(
        description="The enterprise extension (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User)."
    )
    scim: dict[str, Any] = Field(description="The whole SCIM User document, as the SCIM API serves it.")


class MemberPage(BaseModel):
    items: list[Member]
    next_cursor: str | None = Field(description="Pass as `after` for the next page; null on the last.")


class Seats(BaseModel):
    purchased: int
    used: int = Field(description="Active members: each uses a seat.")
    free: int
    auto_charge: bool = Field(description="Buy a seat automatically when provisioning needs one.")
    max_seats: int | None = Field(description="The most seats auto-charge may reach; null: no limit.")


class SeatPurchase(Body):
    quantity: int = Field(ge=1, le=1_000_000, description="Seats to buy (recorded in the seat ledger).")
    reason: str = Field("", max_length=600, description="A note for the ledger.")


class SeatsUpdate(Body):
    auto_charge: bool | None = None
    max_seats: int | None = Field(None, ge=0, le=1_000_000, description="null: no limit.")


class DomainCreate(Body):
    domain: str = Field(min_length=1, max_length=253, description="An e-mail domain, e.g. example.com.")
    verified: bool = Field(
        False, description="Operator override: verified without DNS (recorded as verified by the operator)."
    )


class Domain(BaseModel):
    domain: str
    verified: bool
    verified_by: str | None = Field(description="dns or operator.")
    verified_at: datetime | None
    txt_record: str = Field(description="The TXT record to publish on the domain to verify it.")
    last_error: str | None = Field(description="Why the last check did not verify it.")


class AdminCreate(Body):
    email: str = Field(min_length=3, max_length=320)


class Admin(BaseModel):
    email: str
    since: datetime
    added_by: str | None
    password_set: bool


class AddedAdmin(BaseModel):
    email: str
    created: bool = Field(description="A new account.")
    set_password_url: str | None = Field(
        description="One-time link (72 hours) for an account without a password; shown only now."
    )


class LoggedRequest(BaseModel):
    at: datetime
    operation: str
    status: int
    detail: str | None


class Connection(BaseModel):
    connected: bool = Field(description="A SCIM request succeeded in the last 24 hours.")
    last_success: LoggedRequest | None
    last_failure: LoggedRequest | None
    requests_24h: int
    failures_24h: int
    idp: str | None = Field(description="The identity provider, as its User-Agent tells.")
    credential_last_used: datetime | None


class Scim(BaseModel):
    enabled: bool
    method: ScimMethod
    tenant_url: str
    token_url: str
    authorization_url: str
    connection: Connection


class ScimUpdate(Body):
    enabled: bool | None = Field(None, description="SCIM can be turned on only with a verified domain.")
    method: ScimMethod | None = Field(
        None, description="Switching revokes the previous method's credentials at once."
    )
