"""The outbox worker: claims due notifications, delivers them, records the outcome, and says it is alive.

It runs inside ``provisio serve`` (``PROVISIO_OUTBOX_WORKER``) or on its own as ``provisio worker``;
any number of workers may share one outbox, since each row is leased to one of them at a time. Each
pass also fans new host events out into webhook rows (``provisio.notify.webhooks``); the webhooks of a
batch are posted concurrently (each is the head of its own ordering key), the e-mails one after another.

Delivery is at least once. The one window for a duplicate is between the SMTP server accepting a
message and the worker committing ``sent_at``: if the worker dies there, the row's lease runs out and
another attempt sends it again. The window is kept small: each row is marked the moment it is
accepted (not at the end of a batch), marking is retried while the lease lasts, a row is only sent
while enough of its lease is left for the send and the marking (so a slow worker does not lose it to
another mid-send), and stopping lets the current send finish and be marked. A message delivered twice
keeps its Message-ID, so receivers that deduplicate show it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import OutboxMessage, WorkerHeartbeat, utcnow
from provisio.domain import host_events
from provisio.domain import webhooks as webhook_rules
from provisio.metrics import MAILS_FAILED, MAILS_SENT
from provisio.notify import outbox
from provisio.notify.failures import flush_due_digests
from provisio.notify.mail import DeliveryError, Sender, mail_sender
from provisio.notify.webhooks import FANOUT_ROUNDS_PER_PASS, WebhookDeliverer, fan_out

log = structlog.get_logger("provisio.notify.worker")

# A row is sent only while at least the SMTP timeout and this much more of its lease is left: the rest
# is for committing ``sent_at`` before another worker may take the row.
LEASE_MARGIN_SECONDS = 1.0
# Heartbeat rows of workers silent for this long are removed when a worker starts.
FORGET_WORKERS_AFTER = timedelta(days=1)
# The running worker beats this often (or at a third of the health's maximum age, if that is shorter)
# from a task of its own, so a batch of slow SMTP sends never makes a working worker look dead.
HEARTBEAT_SECONDS = 10.0
# Sent and given-up rows older than PROVISIO_OUTBOX_RETENTION_DAYS, and host events older than
# PROVISIO_EVENT_RETENTION_DAYS, are pruned this often by the loop.
PRUNE_INTERVAL_SECONDS = 3600.0
# A pass deletes at most this many batches of host events or webhook attempts, so that a backlog (a
# retention shortened, a worker down for weeks) never holds up delivery for long: the loop delivers
# in between, and the next pass comes after PRUNE_CATCH_UP_SECONDS instead of the hour.
PRUNE_MAX_BATCHES = 20
PRUNE_CATCH_UP_SECONDS = 5.0
_ATTEMPT_BATCH = 1000


def new_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _heartbeat_upsert(dialect: Any) -> Any:
    insert = dialect.insert(WorkerHeartbeat)
    return insert.on_conflict_do_update(
        index_elements=[WorkerHeartbeat.worker_id],
        set_={
            "beat_at": insert.excluded.beat_at,
            "sent": insert.excluded.sent,
            "failed": insert.excluded.failed,
        },
    )


# Both dialects spell an upsert the same way, but through their own insert constructs.
_HEARTBEATS = {"postgresql": _heartbeat_upsert(postgresql), "sqlite": _heartbeat_upsert(sqlite)}


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        worker_id: str | None = None,
        senders: Mapping[str, Sender] | None = None,
        webhooks: bool = True,
        deliverer: WebhookDeliverer | None = None,
    ) -> None:
        if settings.outbox_lease_seconds <= settings.smtp_timeout_seconds + LEASE_MARGIN_SECONDS:
            raise ValueError(
                "PROVISIO_OUTBOX_LEASE_SECONDS must be longer than PROVISIO_SMTP_TIMEOUT_SECONDS "
                f"plus {LEASE_MARGIN_SECONDS:g} s, or no notification could be sent in time."
            )
        if (
            webhooks
            and settings.outbox_lease_seconds <= settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
        ):
            raise ValueError(
                "PROVISIO_OUTBOX_LEASE_SECONDS must be longer than PROVISIO_WEBHOOK_TIMEOUT_SECONDS "
                f"plus {LEASE_MARGIN_SECONDS:g} s, or no webhook could be delivered in time."
            )
        self.db = db
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.senders: Mapping[str, Sender] = (
            senders if senders is not None else {outbox.MAIL: mail_sender(settings)}
        )
        self.webhooks: WebhookDeliverer | None = None
        if webhooks:
            self.webhooks = deliverer or WebhookDeliverer(db, settings)
        self.sent = 0
        self.failed = 0
        self._last_beat: float | None = None  # loop time of this worker's last beat
        self._again = False  # the last pass left rows due (a full fan-out batch, a key handed back)
        self._listening = False  # woken by host events' commits (while some endpoint is enabled)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_prune = 0.0  # loop time of the next pruning; the first pass prunes

    # --- one pass ---------------------------------------------------------------------------------

    @property
    def kinds(self) -> list[str]:
        return [*self.senders.keys(), *([outbox.WEBHOOK] if self.webhooks is not None else [])]

    async def beat(self) -> None:
        self._last_beat = asyncio.get_running_loop().time()
        now = utcnow()
        async with self.db.writing() as session:
            await session.execute(
                _HEARTBEATS[self.db.dialect],
                {
                    "worker_id": self.worker_id,
                    "beat_at": now,
                    "started_at": now,
                    "sent": self.sent,
                    "failed": self.failed,
                },
            )

    def heartbeat_interval(self) -> float:
        return min(HEARTBEAT_SECONDS, self.settings.outbox_heartbeat_max_age_seconds / 3)

    async def _beat_periodically(self) -> None:
        """Beat while the loop runs, whatever it is waiting for (a stalled SMTP server included): the
        health's "alive" is about the worker, "stuck" about the due rows waiting too long."""
        while True:
            await asyncio.sleep(self.heartbeat_interval())
            try:
                await self.beat()
            except Exception:
                log.warning("outbox.heartbeat_failed", worker=self.worker_id, exc_info=True)

    async def prune_if_due(self) -> int:
        """Prune sent and given-up rows, and host events, past their retention, at most once per
        ``PRUNE_INTERVAL_SECONDS``; how many rows were deleted."""
        now = asyncio.get_running_loop().time()
        if now < self._next_prune:
            return 0
        self._next_prune = now + PRUNE_INTERVAL_SECONDS
        retention = self.settings.outbox_retention_days
        deleted = await outbox.prune(self.db, retention)
        if deleted:
            log.info("outbox.pruned", deleted=deleted, retention_days=retention, worker=self.worker_id)
        event_retention = self.settings.event_retention_days
        events = await host_events.prune_expired(
            self.db, event_retention, batch=host_events.PRUNE_BATCH, max_batches=PRUNE_MAX_BATCHES
        )
        behind = events >= host_events.PRUNE_BATCH * PRUNE_MAX_BATCHES
        if events:
            log.info(
                "host_events.pruned", deleted=events, retention_days=event_retention, worker=self.worker_id
            )
        if self.webhooks is not None:
            behind = await self._webhook_upkeep() or behind
        if behind:
            self._next_prune = now + PRUNE_CATCH_UP_SECONDS
        return deleted + events

    async def _webhook_upkeep(self) -> bool:
        """Prune old attempts and repair orphaned keys; whether attempts are left for the next pass."""
        days = self.settings.webhook_attempt_retention_days
        cutoff = utcnow() - timedelta(days=days)
        pruned = 0
        behind = False
        for _ in range(PRUNE_MAX_BATCHES):
            async with self.db.writing() as session:
                batch = await webhook_rules.prune_attempts(session, older_than=cutoff)
            pruned += batch
            behind = batch >= _ATTEMPT_BATCH
            if not behind:
                break
            await asyncio.sleep(0.05)
        if pruned:
            log.info("webhook.attempts_pruned", deleted=pruned, retention_days=days, worker=self.worker_id)
        repaired = await outbox.repair_orphans(self.db)
        if repaired:
            log.warning("outbox.orphaned_keys_repaired", keys=repaired, worker=self.worker_id)
        return behind

    async def run_once(self) -> int:
        """Beat, enqueue the digests whose window ended, fan out new host events, claim one batch and
        deliver it; how many rows were claimed."""
        # Host events can wake the loop once per commit: a beat a second is plenty for the health.
        if self._last_beat is None or asyncio.get_running_loop().time() - self._last_beat >= 1.0:
            await self.beat()
        try:
            await flush_due_digests(self.db, self.settings)
        except Exception:  # a digest that cannot be built must not hold up the mail already due
            log.exception("notify.digest_flush_failed", worker=self.worker_id)
        if self.webhooks is not None:
            try:
                await self.fan_out()
            except Exception:  # the events wait where they are; the rows already due still leave
                log.exception("webhook.fan_out_failed", worker=self.worker_id)
        batch = await outbox.claim_due(
            self.db,
            self.worker_id,
            kinds=self.kinds,
            limit=self.settings.outbox_batch_size,
            lease_seconds=self.settings.outbox_lease_seconds,
        )
        mails = [item for item in batch if item.kind != outbox.WEBHOOK]
        webhooks = [item for item in batch if item.kind == outbox.WEBHOOK]
        await asyncio.gather(
            self._deliver_in_turn(mails), *(self._deliver_webhook(item) for item in webhooks)
        )
        return len(batch)

    async def fan_out(self) -> None:
        """Fan out what new host events there are, a few batches at most (the loop comes back)."""
        for _ in range(FANOUT_ROUNDS_PER_PASS):
            result = await fan_out(self.db)
            if result.endpoints is not None:
                self._listen(result.endpoints > 0)
            if not result.full or self._stop.is_set():
                return
        self._again = True

    def left_due(self) -> bool:
        """Whether the last pass left rows due that a claim did not take (a full fan-out, a key's
        deliveries handed back); asking resets it."""
        again, self._again = self._again, False
        return again

    def _listen(self, on: bool) -> None:
        if on and not self._listening:
            host_events.add_listener(self.wake)
        elif not on and self._listening:
            host_events.remove_listener(self.wake)
        self._listening = on

    def _time_for(self, item: outbox.Claimed) -> bool:
        """Whether enough of the row's lease is left to attempt it (and mark it) before it runs out."""
        timeout = (
            self.settings.webhook_timeout_seconds
            if item.kind == outbox.WEBHOOK
            else self.settings.smtp_timeout_seconds
        )
        left = (item.claimed_until - utcnow()).total_seconds()
        return not self._stop.is_set() and left >= timeout + LEASE_MARGIN_SECONDS

    async def _deliver_in_turn(self, batch: list[outbox.Claimed]) -> None:
        for index, item in enumerate(batch):
            if not self._time_for(item):
                await outbox.release(self.db, [rest.id for rest in batch[index:]], self.worker_id)
                break
            await self.deliver(item)

    async def _deliver_webhook(self, item: outbox.Claimed) -> None:
        assert self.webhooks is not None
        if not self._time_for(item):
            await outbox.release(self.db, [item.id], self.worker_id)
            return
        delivered, failed = self.webhooks.delivered, self.webhooks.failed
        try:
            if await self.webhooks.deliver(item, self.worker_id, go_on=self._time_for):
                self._again = True
        except Exception:  # its lease runs out and it is tried again; the other rows go on
            log.exception("webhook.delivery_failed", outbox_id=item.id, worker=self.worker_id)
        finally:
            self.sent += self.webhooks.delivered - delivered
            self.failed += self.webhooks.failed - failed

    async def deliver(self, item: outbox.Claimed) -> None:
        try:
            await self.senders[item.kind](item)
        except Exception as exc:
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            await self._failed(item, exc if isinstance(exc, DeliveryError) else repr(exc), permanent)
            return
        self.sent += 1
        if item.kind == outbox.MAIL:
            MAILS_SENT.inc()
        await self._mark_sent(item)

    async def _mark_sent(self, item: outbox.Claimed) -> None:
        # Delivered but not yet marked: this is the window for a duplicate, so a failing database is
        # tried again for as long as the lease keeps the row ours.
        delay = 0.1
        while True:
            try:
                await outbox.mark_sent(self.db, item.id, scrub=bool(item.payload.get("secret")))
                return
            except Exception:
                if utcnow() + timedelta(seconds=delay) >= item.claimed_until:
                    log.exception("outbox.mark_sent_failed", outbox_id=item.id, worker=self.worker_id)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _failed(self, item: outbox.Claimed, error: object, permanent: bool) -> None:
        self.failed += 1
        if item.kind == outbox.MAIL:
            MAILS_FAILED.inc()
        settings = self.settings
        dead = await outbox.mark_failed(
            self.db,
            item,
            self.worker_id,
            str(error),
            permanent=permanent,
            max_attempts=settings.outbox_max_attempts,
            backoff_base=settings.outbox_backoff_seconds,
            backoff_cap=settings.outbox_backoff_max_seconds,
        )
        log.warning(
            "outbox.dead" if dead else "outbox.retry",
            outbox_id=item.id,
            kind=item.kind,
            attempts=item.attempts + 1,
            error=str(error),
        )

    # --- the loop ---------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due rows now (called after a commit that enqueued, from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Until ``stop()``: deliver what is due, then sleep until the poll interval passes or a
        transaction of this process enqueues."""
        self._loop = asyncio.get_running_loop()
        outbox.add_wakeup(self.wake)
        log.info("outbox.worker_started", worker=self.worker_id)
        heartbeat = asyncio.create_task(self._beat_periodically(), name=f"outbox-heartbeat {self.worker_id}")
        try:
            await self._forget_silent_workers()
            while not self._stop.is_set():
                self._wake.clear()
                claimed = 0
                try:
                    claimed = await self.run_once()
                except Exception:
                    log.exception("outbox.pass_failed", worker=self.worker_id)
                try:
                    await self.prune_if_due()
                except Exception:  # pruning is housekeeping: it must never stop the deliveries
                    log.exception("outbox.prune_failed", worker=self.worker_id)
                if claimed >= self.settings.outbox_batch_size or self.left_due():
                    continue  # a full batch, or rows left due: more may be due
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.outbox_poll_seconds)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            outbox.remove_wakeup(self.wake)
            self._listen(False)
            await self.close()
            log.info("outbox.worker_stopped", worker=self.worker_id, sent=self.sent, failed=self.failed)

    async def _forget_silent_workers(self) -> None:
        try:
            async with self.db.writing() as session:
                await session.execute(
                    delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < utcnow() - FORGET_WORKERS_AFTER)
                )
        except Exception:
            log.exception("outbox.forget_workers_failed")

    async def close(self) -> None:
        """Let go of the webhook client's connections (``run`` does it when it stops)."""
        if self.webhooks is not None:
            await self.webhooks.close()

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"outbox-worker {self.worker_id}")
        return self._task

    async def stop(self) -> None:
        """Finish the send in progress (and mark it), give back the rest of the batch, and return."""
        self._stop.set()
        self._wake.set()
        if self._task is None:
            return
        try:
            # A send is bounded by the SMTP (or webhook) timeout; marking it gets a little more.
            longest = max(self.settings.smtp_timeout_seconds, self.settings.webhook_timeout_seconds)
            await asyncio.wait_for(asyncio.shield(self._task), longest + 5 * LEASE_MARGIN_SECONDS)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# --- health ---------------------------------------------------------------------------------------


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max((now - then).total_seconds(), 0.0)


async def outbox_health(db: Database) -> dict[str, Any]:
    """The outbox at a glance, for /readyz and /metrics:

    - ``depth``: pending rows (neither sent nor given up), ``due``: those whose time has come;
    - ``oldest_due_age_seconds``: how long the longest-waiting due row has waited (None: nothing due);
    - ``dead``: rows given up, kept for inspection;
    - ``last_heartbeat_age_seconds``: since the most recent beat of any worker (None: no worker ever);
    - ``workers``: workers known (those silent for a day are forgotten when a worker starts);
    - ``sent`` / ``failed``: deliveries and failed attempts, summed over the known workers since each
      started.

    The counts are the e-mails': a webhook receiver that is down holds up its own deliveries, which
    is its owner's business (the attempt log and the webhook metrics show it), not this deployment's
    readiness."""
    now = utcnow()
    is_due = OutboxMessage.available_at <= now
    mail = OutboxMessage.kind == outbox.MAIL
    async with db.reading() as session:
        depth, due, oldest_due = (
            await session.execute(
                select(
                    func.count(),
                    func.count().filter(is_due),
                    func.min(OutboxMessage.available_at).filter(is_due),
                ).where(*outbox.pending(), mail)
            )
        ).one()
        dead = await session.scalar(select(func.count()).where(OutboxMessage.dead_at.is_not(None), mail))
        last_beat, workers, sent, failed = (
            await session.execute(
                select(
                    func.max(WorkerHeartbeat.beat_at),
                    func.count(),
                    func.coalesce(func.sum(WorkerHeartbeat.sent), 0),
                    func.coalesce(func.sum(WorkerHeartbeat.failed), 0),
                )
            )
        ).one()
    return {
        "depth": int(depth),
        "due": int(due or 0),
        "oldest_due_age_seconds": _age(now, _as_datetime(oldest_due)),
        "dead": int(dead or 0),
        "last_heartbeat_age_seconds": _age(now, _as_datetime(last_beat)),
        "workers": int(workers),
        "sent": int(sent),
        "failed": int(failed),
    }


def _as_datetime(value: Any) -> datetime | None:
    """An aggregate of a UTC column: a datetime on PostgreSQL, SQLAlchemy's stored text on SQLite."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def outbox_problem(health: Mapping[str, Any], settings: Settings) -> str | None:
    """Why the outbox is not healthy ("worker alive and not stuck"), or None."""
    beat = health["last_heartbeat_age_seconds"]
    if beat is None:
        return "no outbox worker has ever run (start `provisio worker` or set PROVISIO_OUTBOX_WORKER=true)"
    if beat > settings.outbox_heartbeat_max_age_seconds:
        return f"no outbox worker is alive: the last heartbeat is {beat:.0f} s old"
    oldest = health["oldest_due_age_seconds"]
    if oldest is not None and oldest > settings.outbox_max_due_age_seconds:
        return f"the outbox is stuck: a due notification has waited {oldest:.0f} s"
    return None
