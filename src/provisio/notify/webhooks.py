"""Webhook delivery: host events fanned out into the outbox and posted as Standard Webhooks.

**Fan-out.** A change writes only its host event (``provisio.domain.host_events``), whatever the number
of endpoints. The outbox worker then reads the events after the stored position (``webhook_fanout``),
500 at a time, in one transaction that locks that row (two workers never fan out the same events), and
enqueues one outbox row (kind ``webhook``: endpoint and event ids) for each enabled endpoint that
matches, advancing the position in the same transaction. The rows of one endpoint and workspace share an
ordering key, so they leave one at a time, in the order of the events (``provisio.notify.outbox``): a
failing delivery holds up only the later events of its endpoint and workspace.

**A delivery** is a POST of the event's JSON with the Standard Webhooks headers: ``webhook-id`` (the
event's id, the same on every retry and replay, for the receiver to deduplicate), ``webhook-timestamp``
(this attempt's time) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of id.timestamp.body>``, made
by the ``standardwebhooks`` library; during a rotation's grace the new and the previous secret's
signatures, space-separated). Any 2xx is delivered; anything else, a redirect included (never
followed), is a failed attempt, logged in ``webhook_attempts`` and retried after the next delay of
``PROVISIO_WEBHOOK_RETRY_SCHEDULE``. When the schedule is used up, or at once on ``410 Gone``, the
endpoint is disabled, its queued rows are given up, and its workspace's admins (or, for a
deployment-wide endpoint, ``PROVISIO_OPERATOR_EMAIL``) are mailed, in that same transaction.

**Where it connects.** The HTTP client resolves the endpoint's host itself, checks every address with
the URL policy (``provisio.domain.webhooks.address_refusal``), connects to the checked address, and
only then speaks TLS with the endpoint's name (SNI and certificate) and its ``Host`` header. So the
address that was checked is the address that is used, and a name that answers a public address to the
check and a private one to the connection (DNS rebinding) cannot slip between the two: there is no
second lookup. No proxy from the environment is used (a proxy would connect elsewhere), and nothing
follows a redirect.

**At least once.** A worker killed mid-delivery leaves its row leased; the lease runs out and another
worker delivers it again, with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import certifi
import httpcore
import httpx
import orjson
import structlog
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from provisio import __version__
from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import WebhookAttempt, WebhookEndpoint, WebhookFanout, Workspace, utcnow
from provisio.domain import admins as admin_service
from provisio.domain import host_events
from provisio.domain import webhooks as rules
from provisio.domain.errors import DomainError, Kind
from provisio.domain.host_events import StoredEvent
from provisio.metrics import webhook_attempt, webhook_endpoint_disabled
from provisio.notify import outbox
from provisio.notify.outbox import Claimed, Ordered
from provisio.notify.rendering import TEMPLATES

log = structlog.get_logger("provisio.notify.webhooks")

FANOUT_BATCH = 500
USER_AGENT = f"provisio-webhooks/{__version__}"
RESPONSE_EXCERPT_BYTES = 1024
# Fan-out rounds of one worker pass when events keep coming (each is a transaction of its own).
FANOUT_ROUNDS_PER_PASS = 20
# A delivery hands its key's next row straight to the same worker, up to this many rows or seconds.
CHAIN_ROWS = 100
CHAIN_SECONDS = 2.0


# --- the fan-out -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FanOut:
    events: int = 0  # events read
    enqueued: int = 0  # outbox rows added
    endpoints: int | None = None  # enabled endpoints seen (None: not looked at)
    full: bool = False  # a whole batch: more events may wait


async def fan_out(db: Database, *, batch: int = FANOUT_BATCH) -> FanOut:
    """Enqueue the deliveries of the next ``batch`` events; see the module's docstring."""
    async with db.reading() as session:
        row = await session.get(WebhookFanout, 1)
        if row is None:
            return FanOut()
        if not await host_events.read_after(session, rules.fanout_position(row), limit=1):
            return FanOut()
    async with db.writing() as session:
        cursor = await rules.lock_fanout(session, skip_locked=True)
        if cursor is None:
            return FanOut()  # another worker is at it
        position = rules.fanout_position(cursor)
        endpoints = await rules.enabled_endpoints(session)
        if not endpoints:
            # Nobody listens: skip to the newest event. An endpoint made later waits for this lock,
            # so it only ever expects events from after this commit.
            latest = await host_events.tail(session)
            if latest > position:
                _move(cursor, latest)
            return FanOut(endpoints=0)
        events = await host_events.read_after(session, position, limit=batch)
        rows = [
            Ordered(
                ordering_key=rules.ordering_key(endpoint.id, event.workspace_id),
                payload={"endpoint_id": endpoint.id, "event_id": event.id},
                workspace_id=event.workspace_id,
            )
            for event in events
            for endpoint in endpoints
            if rules.matches(endpoint, event)
        ]
        enqueued = await outbox.enqueue_ordered(session, kind=outbox.WEBHOOK, rows=rows)
        if events:
            _move(cursor, events[-1].position)
    return FanOut(len(events), enqueued, len(endpoints), len(events) >= batch)


def _move(cursor: WebhookFanout, position: host_events.Position) -> None:
    cursor.txid, cursor.seq = position.txid, position.seq
    cursor.updated_at = utcnow()


# --- replay, test pings, deletion --------------------------------------------------------------------


@dataclass(frozen=True)
class Replayed:
    enqueued: int
    next_since: datetime | None


async def replay(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    event_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Replayed:
    """Enqueue the selected events (``rules.replay_selection``) for ``endpoint`` again, after whatever
    is queued for it; in the caller's transaction."""
    if endpoint.disabled_at is not None:
        raise DomainError(Kind.CONFLICT, "The endpoint is disabled: enable it before replaying events to it.")
    await rules.lock_fanout(session)  # enqueues to a key never interleave (see outbox.enqueue_ordered)
    selection = await rules.replay_selection(session, endpoint, event_id=event_id, since=since, until=until)
    rows = [
        Ordered(
            ordering_key=rules.ordering_key(endpoint.id, event.workspace_id),
            payload={"endpoint_id": endpoint.id, "event_id": event.id, "replay": True},
            workspace_id=event.workspace_id,
        )
        for event in selection.events
    ]
    enqueued = await outbox.enqueue_ordered(session, kind=outbox.WEBHOOK, rows=rows)
    return Replayed(enqueued, selection.next_since)


async def send_test(session: AsyncSession, endpoint: WebhookEndpoint, workspace_key: str | None) -> str:
    """Enqueue a ``webhook.test`` ping (one attempt, no retry, never disables anything, queued beside
    the events rather than behind them); its id."""
    event_id = host_events.new_event_id()
    event = {
        "id": event_id,
        "type": rules.TEST_EVENT_TYPE,
        "workspace": workspace_key,
        "workspace_id": endpoint.workspace_id,
        "occurred_at": utcnow().isoformat().replace("+00:00", "Z"),
        "actor": host_events.Actor(host_events.OPERATOR).as_json(),
        "data": {"endpoint_id": endpoint.id},
    }
    await outbox.enqueue(
        session,
        kind=outbox.WEBHOOK,
        payload={"endpoint_id": endpoint.id, "test": event},
        workspace_id=endpoint.workspace_id,
    )
    return event_id


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """Delete it, its attempt log and its queued deliveries."""
    await rules.lock_fanout(session)
    await outbox.give_up_ordered(
        session, rules.ordering_prefix(endpoint.id), "endpoint deleted", now=utcnow()
    )
    await rules.remove(session, endpoint)


# --- where a delivery may connect --------------------------------------------------------------------


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the URL policy allows, and to exactly the address it checked."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface; the delivery bounds it all)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await rules.resolve(host, port)
        for address in addresses:
            why = rules.address_refusal(address, allow_private=self.allow_private)
            if why is not None:
                raise rules.AddressRefused(host, address, why)
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:  # try the next address, as a resolver's caller does
                failure = exc
                continue
            peer = stream.get_extra_info("server_addr")
            if peer is None or rules.literal_address(str(peer[0])) != rules.literal_address(str(address)):
                await stream.aclose()
                raise rules.AddressRefused(host, address, "different")
            return stream
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks never use a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, *, allow_private: bool, ssl_context: ssl.SSLContext | None = None) -> None:
        context = ssl_context or ssl.create_default_context(cafile=certifi.where())
        super().__init__(verify=context, trust_env=False)
        # httpx builds its connection pool without a way to pass a network backend: the same pool,
        # with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(allow_private=allow_private),
        )


def guarded_client(settings: Settings, *, ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=GuardedTransport(
            allow_private=settings.webhook_allow_private_urls, ssl_context=ssl_context
        ),
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT, "accept-encoding": "identity"},
    )


# --- one attempt -------------------------------------------------------------------------------------


def signature_header(secrets: list[str], event_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<sig>`` for each secret, space-separated (Standard Webhooks allows several)."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return " ".join(Webhook(secret).sign(event_id, moment, body) for secret in secrets)


def delivery_headers(secrets: list[str], event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, event_id, timestamp, body),
        "content-type": "application/json",
    }


@dataclass(frozen=True)
class Outcome:
    started_at: datetime
    duration_ms: int
    http_status: int | None = None
    error: str | None = None  # the kind of failure when no status says it
    detail: str = ""  # for the outbox's last_error and the log
    body: str | None = None

    @property
    def delivered(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300 and self.error is None

    @property
    def metric(self) -> str:
        """The ``outcome`` label of the attempt counter: a handful of values."""
        if self.delivered:
            return "delivered"
        if self.http_status is not None:
            return "redirect" if 300 <= self.http_status < 400 else "http_error"
        return self.error or "error"

    def summary(self) -> str:
        if self.http_status is not None:
            return f"HTTP {self.http_status}"
        return f"{self.error}: {self.detail}" if self.detail else str(self.error)


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _connect_error(exc: BaseException) -> str:
    for cause in _chain(exc):
        if isinstance(cause, ConnectionRefusedError):
            return "connection_refused"
        if isinstance(cause, ssl.SSLError):
            return "tls"
    text = str(exc).lower()
    if "refused" in text:
        return "connection_refused"
    if "ssl" in text or "certificate" in text:
        return "tls"
    return "connection_failed"


async def _excerpt(response: httpx.Response) -> str:
    """The first KiB of the body, never more read (a receiver could send gigabytes)."""
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= RESPONSE_EXCERPT_BYTES:
            break
    return _storable(data[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace"))


def _storable(text: str) -> str:
    # PostgreSQL text cannot hold NUL: a receiver that answers one must still get its attempt logged.
    return text.replace("\x00", "\ufffd")


async def post(
    client: httpx.AsyncClient, settings: Settings, url: str, headers: dict[str, str], body: bytes
) -> Outcome:
    started = utcnow()
    clock = time.perf_counter()

    def done(**values: Any) -> Outcome:
        return Outcome(started_at=started, duration_ms=round((time.perf_counter() - clock) * 1000), **values)

    try:
        rules.split_url(url, allow_private=settings.webhook_allow_private_urls)
    except rules.InvalidField as exc:
        return done(error="url_refused", detail=exc.detail)
    try:
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            async with client.stream("POST", url, content=body, headers=headers) as response:
                status = response.status_code
                excerpt = await _excerpt(response)
    except (TimeoutError, httpx.TimeoutException):
        return done(error="timeout", detail=f"no answer within {settings.webhook_timeout_seconds:g} s")
    except rules.AddressRefused as exc:
        return done(error="address_refused", detail=str(exc))
    except rules.NameNotResolved as exc:
        return done(error="dns", detail=str(exc))
    except httpx.ConnectError as exc:
        return done(error=_connect_error(exc), detail=_storable(str(exc)[:300]))
    except httpx.HTTPError as exc:
        return done(error="connection_failed", detail=_storable(f"{type(exc).__name__}: {exc}"[:300]))
    except Exception as exc:  # whatever else went wrong is this attempt's failure, logged like the rest
        log.exception("webhook.post_failed", url=rules.shown_url(url))
        return done(error="error", detail=type(exc).__name__)
    return done(http_status=status, body=excerpt, detail=f"HTTP {status}")


# --- the worker's side -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    event_id: str
    event_type: str
    workspace_id: str | None
    body: bytes | None  # None: the event is no longer kept


class WebhookDeliverer:
    """Delivers the outbox's webhook rows for an ``OutboxWorker``; one HTTP client, kept alive."""

    def __init__(
        self, db: Database, settings: Settings, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.client = guarded_client(settings, ssl_context=ssl_context)
        self.delivered = 0
        self.failed = 0

    async def close(self) -> None:
        await self.client.aclose()

    async def deliver(
        self, item: Claimed, worker_id: str, *, go_on: Callable[[Claimed], bool] = lambda _: True
    ) -> bool:
        """Deliver ``item``; then, as long as each delivery hands over the next row of its ordering key
        and ``go_on`` agrees, that one too (no claim in between), for at most ``CHAIN_ROWS`` rows and
        ``CHAIN_SECONDS``: then the next is given back (and True returned: it is due now), so that one
        busy key never keeps the worker from claiming the others' rows."""
        started = time.monotonic()
        current: Claimed | None = item
        done = 0
        while current is not None:
            following = await self.attempt(current, worker_id)
            done += 1
            if following is None:
                return False
            if done >= CHAIN_ROWS or time.monotonic() - started >= CHAIN_SECONDS or not go_on(following):
                await outbox.release(self.db, [following.id], worker_id)
                return True
            current = following
        return False

    async def attempt(self, item: Claimed, worker_id: str) -> Claimed | None:
        """One attempt, recorded; the next row of the key when it was handed over to this worker."""
        payload = item.payload
        async with self.db.reading() as session:
            endpoint = await session.get(WebhookEndpoint, str(payload.get("endpoint_id", "")))
            target = await self._target(session, endpoint, payload) if endpoint is not None else None
        now = utcnow()
        if endpoint is None or target is None or endpoint.disabled_at is not None:
            if endpoint is None:
                why = "endpoint deleted"
            elif target is None:
                why = "not a webhook delivery"
            else:
                why = "endpoint disabled"
            await self._give_up(item, worker_id, why)
            return None
        if target.body is None:
            outcome = Outcome(
                started_at=now, duration_ms=0, error="event_gone", detail="the event is no longer kept"
            )
        else:
            try:
                secrets = rules.signing_secrets(endpoint, self.settings.secret_key, now)
            except rules.SecretUnreadable as exc:
                outcome = Outcome(started_at=now, duration_ms=0, error="secret_unreadable", detail=str(exc))
            else:
                headers = delivery_headers(secrets, target.event_id, int(time.time()), target.body)
                outcome = await post(self.client, self.settings, endpoint.url, headers, target.body)
        webhook_attempt(outcome.metric)
        if outcome.delivered:
            self.delivered += 1
        else:
            self.failed += 1
            log.info(
                "webhook.attempt_failed",
                endpoint=endpoint.id,
                event_id=target.event_id,
                attempt=item.attempts + 1,
                status=outcome.http_status,
                error=outcome.error,
                detail=outcome.detail,
            )
        return await self._record(item, worker_id, endpoint, target, outcome)

    async def _target(
        self, session: AsyncSession, endpoint: WebhookEndpoint, payload: dict[str, Any]
    ) -> _Target | None:
        test = payload.get("test")
        if isinstance(test, dict) and isinstance(test.get("id"), str):
            return _Target(test["id"], rules.TEST_EVENT_TYPE, endpoint.workspace_id, orjson.dumps(test))
        event_id = payload.get("event_id")
        if not isinstance(event_id, str):
            return None
        event: StoredEvent | None = await host_events.get_event(session, event_id)
        if event is None:
            return _Target(event_id, "", None, None)
        return _Target(event.id, event.type, event.workspace_id, orjson.dumps(event.as_json()))

    async def _give_up(self, item: Claimed, worker_id: str, why: str) -> None:
        async with self.db.writing() as session:
            await outbox.mark_failed_in(session, item, worker_id, why, retry_at=None, now=utcnow())

    def _plan(self, item: Claimed, outcome: Outcome, now: datetime) -> tuple[datetime | None, str | None]:
        """When to try again (None: never), and why to disable the endpoint (None: keep it)."""
        if outcome.delivered:
            return None, None
        if item.ordering_key is None:  # a test ping: one attempt
            return None, None
        if outcome.error == "event_gone":
            return None, None
        if outcome.http_status == 410:
            return None, "the endpoint answered 410 Gone"
        attempt = item.attempts + 1
        delay = rules.retry_delay(self.settings.webhook_retry_delays, attempt, random.random())
        if delay is None:
            return None, rules.exhausted_reason(attempt, item.created_at, now, outcome.summary())
        return now + timedelta(seconds=delay), None

    async def _record(
        self, item: Claimed, worker_id: str, endpoint: WebhookEndpoint, target: _Target, outcome: Outcome
    ) -> Claimed | None:
        now = utcnow()
        retry_at, disable = self._plan(item, outcome, now)
        following: Claimed | None = None
        disabled: WebhookEndpoint | None = None
        try:
            async with self.db.writing() as session:
                if disable is not None:
                    # First, as every transaction that changes an endpoint's queued rows does: the
                    # fan-out and replays take it before they lock rows, so no cycle can form.
                    await rules.lock_fanout(session)
                # Its foreign key holds the endpoint (on PostgreSQL a deletion waits for this commit);
                # an endpoint deleted already fails it, and there is nothing left to record.
                await session.execute(
                    insert(WebhookAttempt),
                    [
                        {
                            "endpoint_id": endpoint.id,
                            "event_id": target.event_id,
                            "event_type": target.event_type or "unknown",
                            "workspace_id": target.workspace_id or item.workspace_id,
                            "attempt": item.attempts + 1,
                            "started_at": outcome.started_at,
                            "duration_ms": outcome.duration_ms,
                            "outcome": rules.DELIVERED if outcome.delivered else rules.FAILED,
                            "http_status": outcome.http_status,
                            "error": outcome.error,
                            "response_body": outcome.body,
                            "next_retry_at": retry_at,
                        }
                    ],
                )
                if outcome.delivered:
                    if await outbox.mark_sent_in(session, item.id, now=now) and item.ordering_key:
                        following = await outbox.promote_next(
                            session,
                            item.ordering_key,
                            now=now,
                            claim_for=worker_id,
                            lease_seconds=self.settings.outbox_lease_seconds,
                        )
                else:
                    ours = await outbox.mark_failed_in(
                        session, item, worker_id, outcome.summary(), retry_at=retry_at, now=now
                    )
                    if ours and disable is not None:
                        disabled = await disable_endpoint(
                            session, self.settings, endpoint.id, disable, now=now
                        )
        except IntegrityError:
            log.info("webhook.endpoint_gone", endpoint=endpoint.id)
            return None
        if disabled is not None:
            _disabled_told(disabled, disable or "")
        return following


# --- disabling ---------------------------------------------------------------------------------------


async def disable_endpoint(
    session: AsyncSession, settings: Settings, endpoint_id: str, reason: str, *, now: datetime
) -> WebhookEndpoint | None:
    """Disable the endpoint, give up its queued rows and enqueue the e-mails that say so, in the
    caller's transaction, which holds the fan-out's lock; the endpoint, or None when it was disabled
    already."""
    endpoint = await rules.mark_disabled(session, endpoint_id, reason, now=now)
    if endpoint is None:
        return None
    await outbox.give_up_ordered(
        session, rules.ordering_prefix(endpoint_id), f"endpoint disabled: {reason}", now=now
    )
    await _mail_disabled(session, settings, endpoint, reason)
    return endpoint


def _disabled_told(endpoint: WebhookEndpoint, reason: str) -> None:
    scope = "workspace" if endpoint.workspace_id else "deployment"
    webhook_endpoint_disabled(scope)
    # The operator's alert: a logger of its own, looked up now (a rare line; tests can capture it).
    structlog.get_logger("provisio.webhooks.alert").warning(
        "webhook.endpoint_disabled",
        endpoint=endpoint.id,
        url=rules.shown_url(endpoint.url),
        workspace_id=endpoint.workspace_id,
        scope=scope,
        reason=reason,
    )


async def _mail_disabled(
    session: AsyncSession, settings: Settings, endpoint: WebhookEndpoint, reason: str
) -> None:
    workspace = await session.get(Workspace, endpoint.workspace_id) if endpoint.workspace_id else None
    if workspace is not None:
        recipients = await admin_service.workspace_admin_emails(session, workspace.id)
        page = f"{settings.public_base}/console/workspaces/{workspace.key}/webhooks"
    else:
        recipients = [settings.operator_email] if settings.operator_email.strip() else []
        page = None
    values = {
        "endpoint_id": endpoint.id,
        "url": rules.shown_url(endpoint.url),
        "reason": reason,
        "workspace": workspace,
        "page_url": page,
        "api_url": f"{settings.public_base}/api/v1/webhook-endpoints/{endpoint.id}",
    }
    where = workspace.name if workspace is not None else "every workspace"
    subject = " ".join(f"Webhooks for {where} are disabled: {rules.shown_url(endpoint.url)}".split())[:200]
    assert endpoint.disabled_at is not None
    for address in recipients:
        try:
            await outbox.enqueue_mail(
                session,
                to=[address],
                subject=subject,
                text=TEMPLATES.get_template("webhook_disabled.txt").render(values | {"recipient": address}),
                html=TEMPLATES.get_template("webhook_disabled.html").render(
                    values | {"recipient": address, "subject": subject}
                ),
                workspace_id=endpoint.workspace_id,
                dedupe_key=_dedupe_key(endpoint.id, endpoint.disabled_at.isoformat(), address.lower()),
            )
        except ValueError:
            # An address the outbox cannot send to must not keep the endpoint enabled.
            log.warning("webhook.unmailable_recipient", endpoint=endpoint.id)


def _dedupe_key(*parts: str) -> str:
    return "webhook-disabled:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
