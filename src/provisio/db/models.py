"""Tables. One workspace is one SCIM tenant; a member is a person in a workspace (a SCIM User).

The SCIM representation of a member is kept whole in ``Member.doc`` (JSON) so that every attribute an
IdP sends survives a round trip; the attributes that are filtered, sorted or enforced are copied into
columns by ``provisio.domain.members`` (the one place that writes them).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Off until an admin or operator turns it on, which needs a verified domain (domain.domains); a row
    # written without the ORM starts off too.
    scim_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    seats_purchased: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # How IdPs authenticate to SCIM: "bearer" (legacy token), "authorization_code" or "client_credentials".
    scim_auth_method: Mapped[str] = mapped_column(String(32), default="bearer", server_default="bearer")
    license_auto_charge: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    license_max_seats: Mapped[int | None] = mapped_column(Integer)
    # Members whose e-mail is outside the verified domains are refused unless this is on.
    allow_other_domains: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Members SCIM can see (not deleted), kept by domain.members so that an unfiltered list answers
    # totalResults without counting the whole workspace on every page.
    member_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Set while the host application has disabled the workspace (domain.workspaces): SCIM and new OAuth
    # tokens are refused and nothing changes, but every row and setting is kept for when it is enabled.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Person(Base):
    """A human identified by e-mail across all workspaces (case-insensitively)."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320))
    email_lower: Mapped[str] = mapped_column(String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Member(Base):
    """A person in a workspace; exposed through SCIM as a User while ``deleted_at`` is empty."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(
        String(36).with_variant(String(36, collation="C"), "postgresql"), primary_key=True, default=new_id
    )
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    user_name: Mapped[str] = mapped_column(String(512))
    user_name_lower: Mapped[str] = mapped_column(String(512))
    external_id: Mapped[str | None] = mapped_column(String(512))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    display_name: Mapped[str | None] = mapped_column(String(512))
    given_name: Mapped[str | None] = mapped_column(String(512))
    family_name: Mapped[str | None] = mapped_column(String(512))
    email_lower: Mapped[str | None] = mapped_column(String(320))
    doc: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    provisioned_by_scim: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # userName is unique per workspace, case-insensitively, among members SCIM can see.
        Index(
            "uq_members_workspace_username",
            "workspace_id",
            "user_name_lower",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        # Members SCIM can see (deleted_at IS NULL), in id order: a page reads this index in order, and an
        # offset page skips rows inside it without reading them. Partial, because PostgreSQL does not take
        # an IS NULL column of a composite index as fixed and would sort the whole workspace instead.
        Index(
            "ix_members_live",
            "workspace_id",
            "id",
            "deleted_at",  # covered, so SQLite reads the index alone
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        # Seats in use (active, not deleted) counted inside this index alone: a POST checks them under the
        # workspace lock, and reading every member row made that grow with the workspace.
        Index("ix_members_seats", "workspace_id", "active", "deleted_at"),
        Index("ix_members_workspace_external_id", "workspace_id", "external_id"),
        Index("ix_members_workspace_email", "workspace_id", "email_lower"),
        Index("ix_members_workspace_modified", "workspace_id", "modified_at"),
        Index("ix_members_person", "person_id"),
    )


class MemberBucket(Base):
    """How many live members of a workspace have ids starting with ``prefix`` (two hex digits).

    Member ids are random UUIDs, so the 256 prefixes split a workspace into buckets of about equal size;
    an offset page in id order skips whole buckets by adding up these counts and steps through the rows
    of one bucket only (``domain.members``). Kept in the same transaction as ``Workspace.member_count``."""

    __tablename__ = "member_buckets"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    prefix: Mapped[str] = mapped_column(
        String(2).with_variant(String(2, collation="C"), "postgresql"), primary_key=True
    )
    live: Mapped[int] = mapped_column(Integer)


class RateLimitBucket(Base):
    """A rate limit's token bucket, shared by every server process (``provisio.ratelimit``): ``tat`` is
    when it is full again (seconds since the epoch), ``granted`` what the last claim got (the claim's
    statement returns it). Keyed by a string of the limit's own (e.g. ``scim:<workspace id>``)."""

    __tablename__ = "rate_limit_buckets"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    tat: Mapped[float] = mapped_column(Double)
    granted: Mapped[int] = mapped_column(Integer)


class ScimToken(Base):
    """A long-lived bearer token of one workspace (the legacy SCIM authentication method)."""

    __tablename__ = "scim_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when a regeneration with a rotation window replaced the token: it is refused from then on.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProvisioningEvent(Base):
    """One line of a workspace's provisioning log: a state change or a failure seen by an IdP."""

    __tablename__ = "provisioning_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str | None] = mapped_column(String(36))
    # Compared by code point on both databases (SQLite's BINARY already does), so that a userName
    # prefix is a range of ix_events_workspace_user_name (provisio.domain.provisioning_log).
    user_name: Mapped[str | None] = mapped_column(
        String(512).with_variant(String(512, collation="C"), "postgresql")
    )
    outcome: Mapped[str] = mapped_column(String(20))
    status: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    # What the provisioning log shows of the request (provisio.domain.events): never a secret.
    request_id: Mapped[str | None] = mapped_column(String(128))
    credential: Mapped[str | None] = mapped_column(String(200))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    scim_type: Mapped[str | None] = mapped_column(String(40))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    request_body: Mapped[str | None] = mapped_column(Text)
    # Refusals that repeat (401, 429) are counted on one row per key and minute instead of one row each;
    # ``aggregate_key`` is that key (NULL on every other event) and ``last_at`` the latest repeat.
    repeats: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    aggregate_key: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_events_workspace_at", "workspace_id", "at"),
        # The newest events of the members of one page of the console's list (last changed by).
        Index("ix_events_workspace_member", "workspace_id", "member_id", "id"),
        # The provisioning log, newest first in pages of ids (read backwards: both databases scan a
        # b-tree in either direction, so "id DESC" in the index would buy nothing), with or without filters.
        Index("ix_events_workspace_id", "workspace_id", "id"),
        Index("ix_events_workspace_outcome", "workspace_id", "outcome", "id"),
        Index("ix_events_workspace_user_name", "workspace_id", "user_name", "id"),
        Index("ix_events_workspace_credential", "workspace_id", "credential", "id"),
        # Finds the row a repeated refusal adds to; only aggregated rows are in it.
        Index(
            "uq_events_workspace_aggregate",
            "workspace_id",
            "aggregate_key",
            unique=True,
            sqlite_where=text("aggregate_key IS NOT NULL"),
            postgresql_where=text("aggregate_key IS NOT NULL"),
        ),
    )


class ScimLastRequest(Base):
    """The newest successful SCIM request of a workspace, reads included (the provisioning log keeps only
    changes and failures): what tells the Connection status panel that an IdP which only reads is there.
    Written at most about once a minute per workspace and process (``provisio.domain.connection_status``)."""

    __tablename__ = "scim_last_requests"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(40))
    status: Mapped[int] = mapped_column(Integer)
    user_agent: Mapped[str | None] = mapped_column(String(200))
    credential: Mapped[str | None] = mapped_column(String(200))


# --- Console admins and the OAuth 2.0 authorization server (provisio.domain.admins, provisio.oauth) ---


class Admin(Base):
    """A person who signs in to the console; administers the workspaces linked in ``workspace_admins``."""

    __tablename__ = "admins"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320))
    email_lower: Mapped[str] = mapped_column(String(320), unique=True)
    # None until an admin added by e-mail sets one with their set-password link: no password signs in.
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkspaceAdmin(Base):
    __tablename__ = "workspace_admins"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    admin_id: Mapped[str] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who granted it: an admin's e-mail in the console, or ``operator (CLI)``; None before it was kept.
    added_by: Mapped[str | None] = mapped_column(String(320), nullable=True)


class AdminPasswordToken(Base):
    """The one-time link with which an admin added by e-mail sets their password. Only the token's
    SHA-256 is stored; one per admin (a newer invite replaces it); deleted when used."""

    __tablename__ = "admin_password_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    admin_id: Mapped[str] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin_id: Mapped[str] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A session begun with a sign-in link (``PortalLink``) reaches only the workspace the link was for,
    # whatever else the account administers; None: every workspace of the account (password sign-in).
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True
    )
    # Where the console's "Back to <host>" link leads for the rest of the session (a sign-in link's).
    return_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)


class SignInFailure(Base):
    """A failed console sign-in, counted to throttle password guessing per e-mail and per address."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email_lower: Mapped[str] = mapped_column(String(320))
    client_ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_sign_in_failures_email_at", "email_lower", "at"),
        Index("ix_sign_in_failures_ip_at", "client_ip", "at"),
    )


class OAuthRedirectUri(Base):
    """An exact redirect URI the workspace's Authorization Code client may use."""

    __tablename__ = "oauth_redirect_uris"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    uri: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("uq_oauth_redirect_uris_workspace_uri", "workspace_id", "uri", unique=True),)


class OAuthClient(Base):
    """A workspace's OAuth client (what *Generate Credentials* issues). Only the secret's SHA-256 is kept."""

    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    # The secret's last characters, so the page can show which secret is which without keeping it.
    secret_hint: Mapped[str | None] = mapped_column(String(8))
    grant_method: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # After a regeneration with a rotation window, the replaced secret's SHA-256 is still accepted until
    # ``previous_secret_expires_at``, so the identity provider can be updated without a gap.
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    previous_secret_hint: Mapped[str | None] = mapped_column(String(8))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CredentialReveal(Base):
    """Credentials just issued, waiting for the one page view that shows them (``console.reveal``).

    The row holds them encrypted under a key that only the admin's browser has (a short-lived cookie):
    neither the database nor the cookie alone yields the secret. Deleted when read, or once expired."""

    __tablename__ = "credential_reveals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    session_hash: Mapped[str] = mapped_column(String(64))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    ciphertext: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class OAuthAuthorizationCode(Base):
    __tablename__ = "oauth_authorization_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_pk: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    admin_id: Mapped[str | None] = mapped_column(ForeignKey("admins.id", ondelete="SET NULL"))
    redirect_uri: Mapped[str | None] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(200), default="")
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OAuthToken(Base):
    """One issued access token and (Authorization Code only) its refresh token, both stored as SHA-256.

    Tokens issued from one authorization share ``family_id``; a refresh makes a child (``parent_id``).
    ``refreshed_at`` records when this row's refresh token was rotated away.
    """

    __tablename__ = "oauth_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    client_pk: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True)
    admin_id: Mapped[str | None] = mapped_column(ForeignKey("admins.id", ondelete="SET NULL"))
    grant_type: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(200), default="")
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    parent_id: Mapped[str | None] = mapped_column(String(36), index=True)
    code_id: Mapped[str | None] = mapped_column(String(36), index=True)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- Seats and verified domains (provisio.domain.seats, provisio.domain.domains) ---


class SeatLedgerEntry(Base):
    """One change of a workspace's purchased seat count: when, how many, why and by whom.

    ``seats_after`` is the purchased count once the entry applied, so the newest entry always equals
    ``Workspace.seats_purchased`` (entries are written under the workspace's row lock).
    """

    __tablename__ = "seat_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delta: Mapped[int] = mapped_column(Integer)
    seats_after: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # auto_charge | purchase | operator
    reason: Mapped[str] = mapped_column(String(600))
    actor: Mapped[str] = mapped_column(String(200))

    __table_args__ = (Index("ix_seat_ledger_workspace_id", "workspace_id", "id"),)


class WorkspaceDomain(Base):
    """An e-mail domain a workspace claims; verified by a DNS TXT record or by the operator.

    A domain may be claimed by several workspaces while unverified, but verified by one only.
    """

    __tablename__ = "workspace_domains"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(253))
    verification_code: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_by: Mapped[str | None] = mapped_column(String(20))  # dns | operator
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("uq_workspace_domains_workspace_domain", "workspace_id", "domain", unique=True),
        Index(
            "uq_workspace_domains_verified",
            "domain",
            unique=True,
            sqlite_where=text("verified_at IS NOT NULL"),
            postgresql_where=text("verified_at IS NOT NULL"),
        ),
    )


# --- Outbox of notifications (provisio.notify) ---


class OutboxMessage(Base):
    """A notification to deliver (an e-mail or a webhook), written in the transaction that causes it.

    A worker leases due rows (``claimed_by`` until ``claimed_until``), delivers them and marks them
    ``sent_at``; a failure pushes ``available_at`` back, and after the last attempt ``dead_at`` is set and
    the row is kept for inspection (``provisio.notify.outbox``)."""

    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))  # mail | webhook
    payload: Mapped[str] = mapped_column(Text)  # JSON text, read by the kind's sender
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # The same notification is enqueued once: a second enqueue with the key is a no-op.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Rows of one ordering key leave one at a time, in ``ordering_seq`` order: only the earliest pending
    # row of a key is ever due, the others wait (``provisio.notify.outbox``). NULL for mail. Compared by
    # code point on PostgreSQL too, so that the keys of one prefix are one range of the index.
    ordering_key: Mapped[str | None] = mapped_column(
        String(100).with_variant(String(100, collation="C"), "postgresql")
    )
    ordering_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        # Pending rows only (neither sent nor dead), in the order they fall due: the claim's scan and
        # the depth / oldest-due queries of the health check read this small index, never the history.
        Index(
            "ix_outbox_pending_due",
            "available_at",
            sqlite_where=text("sent_at IS NULL AND dead_at IS NULL"),
            postgresql_where=text("sent_at IS NULL AND dead_at IS NULL"),
        ),
        # Given-up rows, kept for inspection: counted by the health check, listed newest first.
        Index(
            "ix_outbox_dead",
            "dead_at",
            sqlite_where=text("dead_at IS NOT NULL"),
            postgresql_where=text("dead_at IS NOT NULL"),
        ),
        # Sent rows, oldest first: the retention's pruning reads this, never the whole table.
        Index(
            "ix_outbox_sent",
            "sent_at",
            sqlite_where=text("sent_at IS NOT NULL"),
            postgresql_where=text("sent_at IS NOT NULL"),
        ),
        Index("ix_outbox_workspace_id", "workspace_id"),
        # The pending rows of each ordering key in order: its head, its tail, and the rows of a prefix.
        Index(
            "ix_outbox_ordering",
            "ordering_key",
            "ordering_seq",
            sqlite_where=text("ordering_key IS NOT NULL AND sent_at IS NULL AND dead_at IS NULL"),
            postgresql_where=text("ordering_key IS NOT NULL AND sent_at IS NULL AND dead_at IS NULL"),
        ),
    )


class WorkerHeartbeat(Base):
    """The last sign of life of each outbox worker (``provisio.notify.worker``), read by health checks,
    with what it delivered and failed to deliver since it started."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)


# --- Failure e-mails (provisio.domain.notifications, provisio.notify.failures) -------------------------


class NotificationState(Base):
    """A workspace's failure e-mails: the digest window an admin chose, and the window now open.

    One row per workspace, created on first use and locked (``FOR UPDATE``) by every failure that is
    noted, so two concurrent failures at a quiet window's start open it once and mail once.
    """

    __tablename__ = "notification_states"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    digest_seconds: Mapped[int | None] = mapped_column(Integer)  # None: PROVISIO_NOTIFY_DIGEST_SECONDS
    window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: quiet
    window_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Blocking reasons already mailed promptly in this window, comma-separated.
    prompted: Mapped[str] = mapped_column(String(400), default="")
    pending: Mapped[int] = mapped_column(Integer, default=0)  # failures waiting for the digest
    overflow: Mapped[int] = mapped_column(Integer, default=0)  # of those, the ones past the entry cap


class NotificationDigestEntry(Base):
    """Failures waiting for a workspace's digest, one row per (userName, reason) with how often."""

    __tablename__ = "notification_digest_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_name: Mapped[str] = mapped_column(String(512), default="")  # "" when the request named no user
    reason: Mapped[str] = mapped_column(String(40))
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index("uq_notification_digest_entries_key", "workspace_id", "reason", "user_name", unique=True),
    )


class NotificationRecipient(Base):
    """An address an admin added to a workspace's failure e-mails, beside its admins."""

    __tablename__ = "notification_recipients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    email_lower: Mapped[str] = mapped_column(String(320))
    added_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("uq_notification_recipients_address", "workspace_id", "email_lower", unique=True),
    )


class NotificationOptOut(Base):
    """A recipient who unsubscribed from a workspace's failure e-mails."""

    __tablename__ = "notification_opt_outs"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    email_lower: Mapped[str] = mapped_column(String(320), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Operator API keys (provisio.domain.api_keys) ---


class ApiKey(Base):
    """A deployment-wide key of the management API (``/api/v1``); only its hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the key, shown in listings so an operator can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HostEvent(Base):
    """A change the host application learns of (``provisio.domain.host_events``): written in the
    transaction of the change, read in order by the events API and the webhook fan-out.

    The order is ``(txid, seq)``. ``seq`` alone is not enough on PostgreSQL: a transaction can take a
    lower ``seq`` and commit after one that took a higher, and a reader that had passed the higher
    would never see the lower. ``txid`` is the writing transaction's id there (0 on SQLite, where
    one writer at a time makes ``seq`` order commit order); readers stop before the oldest
    transaction still running, so nothing can later appear behind a cursor."""

    __tablename__ = "host_events"

    # AUTOINCREMENT on SQLite: a seq is never reused, even after retention empties the table.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(40), unique=True)
    txid: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    type: Mapped[str] = mapped_column(String(64))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc)

    __table_args__ = (
        Index("ix_host_events_order", "txid", "seq"),
        Index("ix_host_events_workspace_order", "workspace_id", "txid", "seq"),
        Index("ix_host_events_occurred_at", "occurred_at"),
        {"sqlite_autoincrement": True},
    )


class PortalLink(Base):
    """A single-use sign-in link the host application asked for (``provisio.domain.portal_links``): it
    signs ``email`` in as an admin of the workspace. Only the token's SHA-256 is stored."""

    __tablename__ = "portal_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    return_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# --- Webhooks (provisio.domain.webhooks, provisio.notify.webhooks) ---


class WebhookEndpoint(Base):
    """A URL that receives host events as Standard Webhooks: every workspace's events, or one's.

    The signing secret is kept encrypted (AES-256-GCM under a key derived from ``PROVISIO_SECRET_KEY``,
    ``provisio.domain.webhooks``): it must be used to sign, so it cannot be hashed. After a rotation the
    previous secret still signs, beside the new one, until ``previous_secret_until``."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # we_…, in creation order
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JSONDoc)  # empty: every type
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_webhook_endpoints_workspace_id", "workspace_id"),)


class WebhookAttempt(Base):
    """One attempt to deliver an event to an endpoint, whatever came of it: the delivery log."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64))
    # The event's workspace (its admins see the attempts of its events); None for a test ping of a
    # deployment-wide endpoint.
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)  # 1 for the first delivery of this outbox row
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))  # delivered | failed
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(40))  # the kind of failure when no status says it
    response_body: Mapped[str | None] = mapped_column(Text)  # its first KiB
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # An endpoint's log newest first, filtered by outcome or by event: each reads one of these.
        Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_attempts_endpoint_outcome", "endpoint_id", "outcome", "id"),
        Index("ix_webhook_attempts_endpoint_event", "endpoint_id", "event_id", "id"),
        # A workspace's console page: the attempts of its events, newest first.
        Index("ix_webhook_attempts_workspace", "workspace_id", "id"),
        Index("ix_webhook_attempts_started_at", "started_at"),
    )


class WebhookFanout(Base):
    """The one row saying how far the fan-out has read the host events (``id`` is always 1).

    Locked by every transaction that adds or removes webhook outbox rows (the fan-out, a replay, an
    endpoint disabled or deleted), so they never interleave."""

    __tablename__ = "webhook_fanout"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
