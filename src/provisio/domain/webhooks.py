"""Webhook endpoints: the URLs that receive host events as Standard Webhooks, and the rules they obey.

Delivery itself (the fan-out into the outbox, the HTTP request, retries) is ``provisio.notify.webhooks``;
this module owns what an endpoint may be and how its rows change:

* **The URL policy** (``check_url``, ``address_refusal``). An endpoint's URL must be ``https`` and its
  host must resolve only to public addresses: never loopback, private, link-local (the cloud metadata
  service at 169.254.169.254 among them), multicast, reserved, shared or unspecified, in IPv4 or IPv6,
  an IPv4 address hidden inside an IPv6 one (``::ffff:127.0.0.1``, 6to4, NAT64) included. It is checked
  when the endpoint is registered or changed, and again for every delivery against the very address the
  delivery connects to (see ``provisio.notify.webhooks``), so a name that resolves somewhere else later
  (DNS rebinding) gets nowhere. ``PROVISIO_WEBHOOK_ALLOW_PRIVATE_URLS=true`` lifts the address rule and
  allows ``http`` (tests, development): unspecified and multicast addresses stay refused.
* **The signing secret**: ``whsec_`` and the base64 of 24 random bytes, shown once (at creation and at
  each rotation). It signs, so it cannot be stored as a hash: it is sealed with AES-256-GCM under a key
  derived (HKDF-SHA256) from ``PROVISIO_SECRET_KEY``, bound to the endpoint's id and slot. Changing
  ``PROVISIO_SECRET_KEY`` therefore makes every endpoint's secret unreadable (rotate them). A rotation
  keeps the previous secret signing, beside the new one, for a grace period.
* **Which events an endpoint gets** (``matches``): its workspace's (or every workspace's, when it has
  none), of its event types (every type when the list is empty), that occurred once it existed.
* **Disabling**: after the retry schedule runs out, or at once on ``410 Gone``; ``enable`` undoes it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import os
import secrets
import socket
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Select, and_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisio.db.models import (
    HostEvent,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookFanout,
    Workspace,
    utcnow,
)
from provisio.domain import host_events
from provisio.domain.errors import DomainError, Kind
from provisio.domain.host_events import Position, StoredEvent

ENDPOINT_PREFIX = "we_"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
MAX_URL = 2000
MAX_DESCRIPTION = 500
MAX_EVENT_TYPES = len(host_events.EVENT_TYPES)
DEFAULT_GRACE_SECONDS = 86400
MAX_GRACE_SECONDS = 7 * 86400
RESOLVE_TIMEOUT_SECONDS = 5.0
# A replay enqueues at most this many events; the answer says where to go on from.
REPLAY_LIMIT = 1000
DELIVERED = "delivered"
FAILED = "failed"
OUTCOMES = (DELIVERED, FAILED)
# The test ping's type: a webhook of its own, never a host event (nothing stores or lists it).
TEST_EVENT_TYPE = "webhook.test"

# --- refusals ----------------------------------------------------------------------------------------


class InvalidField(DomainError):
    """A value of a request field the rules refuse; ``field`` names it (the API answers 422)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(Kind.INVALID, detail)
        self.field = field


def not_found(endpoint_id: str) -> DomainError:
    return DomainError(Kind.NOT_FOUND, f"There is no webhook endpoint {endpoint_id[:60]!r}.")


# --- the URL policy ----------------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to (mapped, 6to4, NAT64, Teredo's client), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a delivery must not connect to ``address`` ("loopback", "private", …), or None."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_refusal(embedded, allow_private=allow_private)
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if allow_private:
        return None
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not public"
    return None


class AddressRefused(Exception):
    """A delivery would reach an address the policy refuses."""

    def __init__(self, host: str, address: IPAddress, why: str) -> None:
        super().__init__(f"{host} resolves to {address}, a {why} address: refused")
        self.host, self.address, self.why = host, address, why


class NameNotResolved(Exception):
    def __init__(self, host: str, detail: str) -> None:
        super().__init__(f"{host} does not resolve: {detail}")
        self.host = host


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the system resolver; an IP literal is itself), in the
    resolver's order, without repeats."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise NameNotResolved(host, str(exc)) from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in found:
        # An IPv6 sockaddr may carry a scope ("fe80::1%2"): ipaddress keeps it.
        address = ipaddress.ip_address(str(sockaddr[0]))
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise NameNotResolved(host, "no address")
    return addresses


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that passed ``check_url``: the only way to give an endpoint one."""

    url: str
    host: str
    port: int


def split_url(url: str, *, allow_private: bool) -> SplitResult:
    """The URL's parts if its form is acceptable (the addresses are ``check_url``'s); else InvalidField."""
    url = url.strip()
    if not url:
        raise InvalidField("url", "An endpoint needs a URL.")
    if len(url) > MAX_URL:
        raise InvalidField("url", f"Keep the URL under {MAX_URL} characters.")
    if not url.isascii() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidField(
            "url", "The URL must be ASCII without spaces (write an international name in its xn-- form)."
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidField("url", f"That is not a URL: {exc}.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise InvalidField("url", "The URL must start with https://.")
    if scheme == "http" and not allow_private:
        raise InvalidField(
            "url",
            "Webhooks are sent over https only (plain http is allowed only with "
            "PROVISIO_WEBHOOK_ALLOW_PRIVATE_URLS=true).",
        )
    if not parts.hostname:
        raise InvalidField("url", "The URL must name a host.")
    if parts.username is not None or parts.password is not None:
        raise InvalidField(
            "url", "The URL must not carry a user name or password: the signature authenticates deliveries."
        )
    if parts.fragment:
        raise InvalidField("url", "The URL must not have a #fragment.")
    if port == 0:
        raise InvalidField("url", "The URL's port must be between 1 and 65535.")
    return parts


def default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


async def check_url(url: str, *, allow_private: bool) -> CheckedUrl:
    """The URL if it may receive webhooks now: its form, then every address its host resolves to.
    Resolve outside any transaction (a lookup can take seconds). InvalidField when refused."""
    parts = split_url(url, allow_private=allow_private)
    host = str(parts.hostname)
    port = default_port(parts)
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            addresses = await resolve(host, port)
    except TimeoutError as exc:
        raise InvalidField("url", f"{host} could not be resolved in time; try again.") from exc
    except NameNotResolved as exc:
        raise InvalidField("url", f"{host} does not resolve to an address.") from exc
    for address in addresses:
        why = address_refusal(address, allow_private=allow_private)
        if why is not None:
            raise InvalidField(
                "url",
                f"{host} resolves to {address}, a {why} address: webhooks are only sent to public addresses.",
            )
    return CheckedUrl(url=url.strip(), host=host, port=port)


def shown_url(url: str) -> str:
    """The URL without its query (which may carry a token of the receiver's) for people who did not
    register it: the console's Webhooks page."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(not a URL)"
    path = parts.path or "/"
    return f"{parts.scheme}://{parts.netloc}{path}" + ("?…" if parts.query else "")


# --- event types -------------------------------------------------------------------------------------


def check_event_types(types: Collection[str] | None) -> list[str]:
    """The types as stored (sorted, no repeats; empty: every type). InvalidField for an unknown one."""
    if not types:
        return []
    unknown = sorted({t for t in types if t not in host_events.EVENT_TYPES})
    if unknown:
        known = ", ".join(sorted(host_events.EVENT_TYPES))
        raise InvalidField(
            "event_types", f"Unknown event type {', '.join(map(repr, unknown))}; the types are: {known}."
        )
    return sorted(set(types))


def check_description(description: str) -> str:
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise InvalidField("description", f"Keep the description under {MAX_DESCRIPTION} characters.")
    return description


# --- secrets -----------------------------------------------------------------------------------------

_NONCE_BYTES = 12
_SEALED_VERSION = "v1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _cipher(secret_key: str) -> AESGCM:
    if not secret_key:
        raise ValueError("PROVISIO_SECRET_KEY is needed to keep webhook secrets")
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"provisio webhook signing secrets v1"
    ).derive(secret_key.encode())
    return AESGCM(key)


def _associated(endpoint_id: str, slot: str) -> bytes:
    # A sealed secret copied to another endpoint, or into the other slot, does not open.
    return f"webhook-secret|{endpoint_id}|{slot}".encode()


def seal(secret_key: str, endpoint_id: str, slot: str, secret: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(secret_key).encrypt(nonce, secret.encode(), _associated(endpoint_id, slot))
    return f"{_SEALED_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"


class SecretUnreadable(Exception):
    """The stored secret does not open with this deployment's key (``PROVISIO_SECRET_KEY`` changed)."""


def unseal(secret_key: str, endpoint_id: str, slot: str, sealed: str) -> str:
    version, _, text = sealed.partition(".")
    if version != _SEALED_VERSION:
        raise SecretUnreadable("unknown sealing")
    try:
        blob = base64.urlsafe_b64decode(text)
        plain = _cipher(secret_key).decrypt(
            blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _associated(endpoint_id, slot)
        )
    except (InvalidTag, ValueError) as exc:
        raise SecretUnreadable("the secret does not open with this PROVISIO_SECRET_KEY") from exc
    return plain.decode()


CURRENT = "current"
PREVIOUS = "previous"


def signing_secrets(endpoint: WebhookEndpoint, secret_key: str, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and during a rotation's grace the
    previous one too. SecretUnreadable when the current one does not open."""
    found = [unseal(secret_key, endpoint.id, CURRENT, endpoint.secret_sealed)]
    until = endpoint.previous_secret_until
    if endpoint.previous_secret_sealed and until is not None and now < until:
        # Should the previous one not open, the new one still signs: a receiver that has it verifies.
        with contextlib.suppress(SecretUnreadable):
            found.append(unseal(secret_key, endpoint.id, PREVIOUS, endpoint.previous_secret_sealed))
    return found


# --- endpoints ---------------------------------------------------------------------------------------


def new_endpoint_id() -> str:
    # Milliseconds first: ids sort in creation order, so a page of them by id is a page by age.
    return f"{ENDPOINT_PREFIX}{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


async def lock_fanout(session: AsyncSession, *, skip_locked: bool = False) -> WebhookFanout | None:
    """The fan-out's row, locked until the transaction ends (on SQLite the writer's lock is the lock).
    ``skip_locked``: None at once when another transaction holds it."""
    query = select(WebhookFanout).where(WebhookFanout.id == 1).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=skip_locked)
    row = await session.scalar(query)
    if row is None and not skip_locked:
        raise RuntimeError("the webhook_fanout row is missing: run `provisio db upgrade`")
    return row


async def create_endpoint(
    session: AsyncSession,
    secret_key: str,
    checked: CheckedUrl,
    *,
    event_types: Collection[str] | None = None,
    workspace: Workspace | None = None,
    description: str = "",
) -> CreatedEndpoint:
    """A new endpoint; it receives the events that occur from now on."""
    types = check_event_types(event_types)
    description = check_description(description)
    # Under the fan-out's lock, and timed after it: a fan-out that found no endpoint and skipped the
    # events up to now has committed, and every event it did not skip occurs after this moment.
    await lock_fanout(session)
    now = utcnow()
    endpoint_id = new_endpoint_id()
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        url=checked.url,
        event_types=types,
        workspace_id=workspace.id if workspace is not None else None,
        description=description,
        created_at=now,
        updated_at=now,
        secret_sealed=seal(secret_key, endpoint_id, CURRENT, secret),
    )
    session.add(endpoint)
    await session.flush()
    return CreatedEndpoint(endpoint=endpoint, secret=secret)


async def get_endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id[:40]) if endpoint_id.isascii() else None
    if endpoint is None:
        raise not_found(endpoint_id)
    return endpoint


async def list_endpoints(session: AsyncSession, *, after: str = "", limit: int) -> list[WebhookEndpoint]:
    """Up to ``limit`` endpoints in creation order (their ids), after the id ``after``."""
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.id).limit(limit)
    if after:
        query = query.where(WebhookEndpoint.id > after)
    return list((await session.scalars(query)).all())


async def workspace_keys(session: AsyncSession, workspace_ids: Collection[str]) -> dict[str, str]:
    ids = sorted({i for i in workspace_ids if i})
    if not ids:
        return {}
    rows = await session.execute(select(Workspace.id, Workspace.key).where(Workspace.id.in_(ids)))
    return {row.id: row.key for row in rows}


async def update_endpoint(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    checked: CheckedUrl | None = None,
    event_types: Collection[str] | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    """Change what is given; rows already queued go to the new URL."""
    if checked is not None:
        endpoint.url = checked.url
    if event_types is not None:
        endpoint.event_types = check_event_types(event_types)
    if description is not None:
        endpoint.description = check_description(description)
    endpoint.updated_at = utcnow()
    await session.flush()
    return endpoint


async def rotate_secret(
    session: AsyncSession, secret_key: str, endpoint: WebhookEndpoint, *, grace_seconds: int
) -> str:
    """A new secret (returned, shown once); the current one keeps signing beside it for
    ``grace_seconds`` (0: it stops at once). A secret still in an earlier grace is dropped."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidField("grace_seconds", f"The grace must be between 0 and {MAX_GRACE_SECONDS} seconds.")
    now = utcnow()
    current = unseal(secret_key, endpoint.id, CURRENT, endpoint.secret_sealed) if grace_seconds else None
    secret = new_secret()
    endpoint.secret_sealed = seal(secret_key, endpoint.id, CURRENT, secret)
    if current is not None:
        endpoint.previous_secret_sealed = seal(secret_key, endpoint.id, PREVIOUS, current)
        endpoint.previous_secret_until = now + timedelta(seconds=grace_seconds)
    else:
        endpoint.previous_secret_sealed = None
        endpoint.previous_secret_until = None
    endpoint.updated_at = now
    await session.flush()
    return secret


async def enable(session: AsyncSession, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Deliver to it again: events from now on (replay the ones it missed)."""
    if endpoint.disabled_at is not None:
        # As for a new endpoint: a fan-out that saw no enabled endpoint must not pass its events by.
        await lock_fanout(session)
        endpoint.disabled_at = None
        endpoint.disabled_reason = None
        endpoint.updated_at = utcnow()
        await session.flush()
    return endpoint


async def mark_disabled(
    session: AsyncSession, endpoint_id: str, reason: str, *, now: datetime
) -> WebhookEndpoint | None:
    """Disable it (the caller gives up its queued rows in the same transaction); None when it was
    disabled or deleted already, so that only one transaction tells anyone."""
    endpoint = await session.scalar(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .execution_options(populate_existing=True)
        .with_for_update()
    )
    if endpoint is None or endpoint.disabled_at is not None:
        return None
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason[:MAX_DESCRIPTION]
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def remove(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """Delete it and its attempt log (the caller gives up its queued rows)."""
    await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id))


def ordering_key(endpoint_id: str, workspace_id: str) -> str:
    """Deliveries to one endpoint of one workspace's events leave one at a time, in order."""
    return f"{endpoint_id}|{workspace_id}"


def ordering_prefix(endpoint_id: str) -> str:
    """The start of every ordering key of an endpoint."""
    return f"{endpoint_id}|"


async def enabled_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    return list(
        (
            await session.scalars(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.disabled_at.is_(None))
                .order_by(WebhookEndpoint.id)
            )
        ).all()
    )


def matches(endpoint: WebhookEndpoint, event: StoredEvent) -> bool:
    """Whether the fan-out gives ``event`` to ``endpoint``."""
    return (
        (endpoint.workspace_id is None or endpoint.workspace_id == event.workspace_id)
        and (not endpoint.event_types or event.type in endpoint.event_types)
        and endpoint.created_at <= event.occurred_at
    )


def fanout_position(row: WebhookFanout) -> Position:
    return Position(row.txid, row.seq)


# --- retries -----------------------------------------------------------------------------------------


def retry_delay(schedule: Sequence[float], attempt: int, jitter: float) -> float | None:
    """Seconds until the next attempt after attempt number ``attempt`` (1 for the first) failed, with
    ``jitter`` (0..1) moving it by up to ±10 % so that endpoints that failed together do not all come
    back at one moment; None when the schedule is used up."""
    if attempt > len(schedule):
        return None
    return schedule[attempt - 1] * (0.9 + 0.2 * jitter)


def exhausted_reason(attempts: int, first_at: datetime, now: datetime, last: str) -> str:
    hours = (now - first_at).total_seconds() / 3600
    span = f"{hours:.1f} hours" if hours >= 1 else f"{(now - first_at).total_seconds():.0f} seconds"
    return f"{attempts} attempts to deliver an event failed over {span} (the last: {last})"


# --- the delivery log --------------------------------------------------------------------------------


async def attempts(
    session: AsyncSession,
    endpoint_id: str,
    *,
    before: int | None = None,
    event_id: str | None = None,
    outcome: str | None = None,
    limit: int,
) -> list[WebhookAttempt]:
    """An endpoint's attempts, newest first, before the attempt id ``before``."""
    query = select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id)
    if event_id:
        query = query.where(WebhookAttempt.event_id == event_id)
    if outcome:
        if outcome not in OUTCOMES:
            raise InvalidField("status", f"The status is one of {', '.join(OUTCOMES)}.")
        query = query.where(WebhookAttempt.outcome == outcome)
    return await _newest(session, query, before, limit)


async def workspace_attempts(
    session: AsyncSession, workspace_id: str, *, before: int | None = None, limit: int
) -> list[WebhookAttempt]:
    """The attempts to deliver a workspace's events (to its endpoints and deployment-wide ones)."""
    query = select(WebhookAttempt).where(WebhookAttempt.workspace_id == workspace_id)
    return await _newest(session, query, before, limit)


async def _newest(
    session: AsyncSession, query: Select[Any], before: int | None, limit: int
) -> list[WebhookAttempt]:
    if before is not None:
        query = query.where(WebhookAttempt.id < before)
    return list((await session.scalars(query.order_by(WebhookAttempt.id.desc()).limit(limit))).all())


async def endpoints_for_workspace(session: AsyncSession, workspace_id: str) -> list[WebhookEndpoint]:
    """The endpoints that receive a workspace's events: its own and the deployment-wide ones."""
    query = (
        select(WebhookEndpoint)
        .where((WebhookEndpoint.workspace_id == workspace_id) | WebhookEndpoint.workspace_id.is_(None))
        .order_by(WebhookEndpoint.id)
    )
    return list((await session.scalars(query)).all())


async def prune_attempts(session: AsyncSession, *, older_than: datetime, batch: int = 1000) -> int:
    """Delete up to ``batch`` attempts started before ``older_than``; how many."""
    oldest = (
        select(WebhookAttempt.id)
        .where(WebhookAttempt.started_at < older_than)
        .order_by(WebhookAttempt.started_at)
        .limit(batch)
    )
    ids = list((await session.scalars(oldest)).all())
    if ids:
        await session.execute(delete(WebhookAttempt).where(WebhookAttempt.id.in_(ids)))
    return len(ids)


# --- replay ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplaySelection:
    events: list[StoredEvent]
    next_since: datetime | None  # more events than REPLAY_LIMIT: the next replay starts here


async def replay_selection(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    event_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = REPLAY_LIMIT,
) -> ReplaySelection:
    """The kept events a replay sends again to ``endpoint``, oldest first: one by id, or those that
    occurred in [since, until) of the endpoint's workspace and types (before it existed too)."""
    if event_id is not None:
        if since is not None or until is not None:
            raise InvalidField("event_id", "Replay one event (event_id) or a time range (since, until).")
        event = await host_events.get_event(session, event_id[:40])
        if event is None or (
            endpoint.workspace_id is not None and event.workspace_id != endpoint.workspace_id
        ):
            raise DomainError(Kind.NOT_FOUND, f"There is no event {event_id[:60]!r} for this endpoint.")
        return ReplaySelection([event], None)
    if since is None:
        raise InvalidField("since", "Give event_id, or since (and until) to replay a time range.")
    if until is not None and until <= since:
        raise InvalidField("until", "until must be later than since.")
    conditions = [HostEvent.occurred_at >= since]
    if until is not None:
        conditions.append(HostEvent.occurred_at < until)
    if endpoint.workspace_id is not None:
        conditions.append(HostEvent.workspace_id == endpoint.workspace_id)
    if endpoint.event_types:
        conditions.append(HostEvent.type.in_(list(endpoint.event_types)))
    rows = await session.execute(
        host_events.stored_events()
        .where(and_(*conditions))
        .order_by(HostEvent.occurred_at, HostEvent.txid, HostEvent.seq)
        .limit(limit + 1)
    )
    found = [host_events.stored(row) for row in rows]
    if len(found) > limit:
        return ReplaySelection(found[:limit], found[limit].occurred_at)
    return ReplaySelection(found, None)
