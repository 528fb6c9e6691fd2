"""Rate limits per key: the GCRA token bucket, the store interface and the per-process leases.

GCRA (the generic cell rate algorithm) keeps one number per key, the *theoretical arrival time* (TAT):
when the bucket would be full again. Taking ``n`` tokens pushes it ``n`` emission intervals (1/rate)
later; a claim is refused while that would put it more than ``burst`` intervals ahead of now. Over any
window of ``w`` seconds a store hands out at most ``rate * w + burst`` tokens.

A store that several server processes share would cost a round trip per request if each request
asked it. A :class:`Limiter` instead claims tokens in leases (up to ``burst / 20``) and spends them
locally, so the store sees one round trip per lease. Tokens are counted against the bucket when
claimed, so leases add at most one lease per process to what a window can admit:
``rate * w + burst + processes * lease``.

:func:`gcra` is the rule; the SQL statement and the Redis script are translations of it, and the
storage contract tests hold every store to the same results.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger("provisio.ratelimit")

# A TAT is a double near 1.8e9 s, with steps of ~2.4e-7 s: rounding may leave a whole token that is
# really there looking like 0.99998 of one. This much of a token is forgiven (it is never cumulative:
# a token granted early still moves the TAT a whole interval on).
EPSILON = 1e-3
# A lease is at most this share of the burst: small enough that processes holding leases change little,
# large enough that claims cost nothing measurable (at 1/20 of the default burst, one upsert per 20
# requests cost GET by id 10 % on PostgreSQL; at 1/5 it is within the benchmark's noise).
LEASE_SHARE = 5
# The longest a claim may take before the limiter lets the request through (fails open): a shared store
# that answers in milliseconds when it is well, and must not hold requests when it is not.
CLAIM_TIMEOUT_S = 0.5
# Credentials remembered as refused (``Limiter.refused_early``) before the memory is cleared.
MAX_REMEMBERED_REFUSALS = 4096


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate needs per_second > 0 and burst >= 1")

    @property
    def interval(self) -> float:
        """Seconds one token takes to come back."""
        return 1.0 / self.per_second

    @property
    def tolerance(self) -> float:
        """How far ahead of now the TAT may be: the whole burst."""
        return self.burst * self.interval


@dataclass(frozen=True)
class Grant:
    """What a claim got: ``granted`` tokens (0 … wanted); when none, how long until one is there."""

    granted: int
    retry_after: float = 0.0


def gcra(tat: float | None, now: float, want: int, rate: Rate) -> tuple[float, Grant]:
    """The new TAT of a bucket at ``tat`` (None: never used) after a claim of up to ``want`` tokens at
    ``now``, and what the claim got. A partial grant is a grant: a process takes what is left."""
    base = now if tat is None or tat < now else tat
    available = (rate.tolerance - (base - now)) / rate.interval + EPSILON
    granted = min(want, math.floor(available)) if available >= 1 else 0
    if granted:
        return base + granted * rate.interval, Grant(granted)
    return base, Grant(0, retry_after(base, now, rate))


def retry_after(base: float, now: float, rate: Rate) -> float:
    """Seconds from ``now`` until a bucket whose TAT is ``base`` has one token again."""
    return max(0.0, base + rate.interval - rate.tolerance - now)


class LimiterStore(Protocol):
    """Where buckets live. ``shared``: whether other processes see the same buckets (then a
    :class:`Limiter` claims in leases; an in-process store is asked for every request)."""

    shared: bool

    async def claim(self, key: str, want: int, rate: Rate, now: float) -> Grant:
        """Take up to ``want`` tokens from ``key``'s bucket at time ``now`` (seconds since the epoch,
        from the caller's clock), atomically with every other claim on that bucket."""
        ...

    async def close(self) -> None: ...


class MemoryStore:
    """Buckets in this process's memory: exact, and per process."""

    shared = False

    def __init__(self) -> None:
        self._tats: dict[str, float] = {}

    async def claim(self, key: str, want: int, rate: Rate, now: float) -> Grant:
        tat, grant = gcra(self._tats.get(key), now, want, rate)
        self._tats[key] = tat
        return grant

    async def close(self) -> None:
        self._tats.clear()


@dataclass
class _Lease:
    tokens: int = 0
    refused_until: float = 0.0
    claiming: asyncio.Future[None] | None = None  # the claim in flight, which other requests wait for


@dataclass(frozen=True)
class Refused:
    retry_after: float  # seconds
    who: object = None  # for an early refusal, what ``remember_refusal`` was told of the caller


class Limiter:
    """Admits or refuses one request of a key at a time, from tokens leased out of ``store``."""

    def __init__(
        self,
        store: LimiterStore,
        rate: Rate,
        *,
        lease: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.rate = rate
        if lease is None:
            lease = max(1, rate.burst // LEASE_SHARE) if store.shared else 1
        self.lease = lease
        self.clock = clock
        self._leases: dict[str, _Lease] = {}
        # credential -> its refused key and caller (refused_early)
        self._refused_credentials: dict[str, tuple[str, object]] = {}

    def refused_early(self, credential: str) -> Refused | None:
        """Whether ``credential`` (what the caller sent, with the URL it sent it to) was last seen
        authenticating for a key that is still refused: then the request can be refused before it
        costs a database statement, so a flooding tenant's excess stays cheap for everyone else. Only
        a request that authenticated and was refused puts its credential here (``remember_refusal``):
        a stranger cannot make another tenant's requests refused early."""
        remembered = self._refused_credentials.get(credential)
        if remembered is None:
            return None
        key, who = remembered
        now = self.clock()
        lease = self._leases.get(key)
        if lease is None or now >= lease.refused_until or lease.tokens > 0:
            del self._refused_credentials[credential]
            return None
        return Refused(lease.refused_until - now, who)

    def remember_refusal(self, credential: str, key: str, who: object = None) -> None:
        if len(self._refused_credentials) >= MAX_REMEMBERED_REFUSALS:
            self._refused_credentials.clear()  # bounded memory; forgetting costs only a statement each
        self._refused_credentials[credential] = (key, who)

    async def admit(self, key: str) -> Refused | None:
        """None when the request may go on; otherwise how long the caller should wait. Costs no I/O
        while this process holds leased tokens, or knows the bucket is empty; one claim at a time per
        key is in flight, and the requests that arrive meanwhile share what it brings."""
        if not self.store.shared:
            # A store in this process's memory is exact and does no I/O: ask it for each request,
            # with no lease to keep and no claim for other requests to wait on.
            grant = await self.store.claim(key, 1, self.rate, self.clock())
            if grant.granted:
                return None
            self._leases.setdefault(key, _Lease()).refused_until = self.clock() + grant.retry_after
            return Refused(grant.retry_after)
        lease = self._leases.get(key)
        if lease is None:
            lease = self._leases[key] = _Lease()
        while True:
            if lease.tokens > 0:
                lease.tokens -= 1
                return None
            now = self.clock()
            if now < lease.refused_until:
                return Refused(lease.refused_until - now)
            if lease.claiming is not None:
                await asyncio.shield(lease.claiming)
                continue
            grant = await self._claim(key, lease, now)
            if not grant.granted:
                return Refused(grant.retry_after)

    async def _claim(self, key: str, lease: _Lease, now: float) -> Grant:
        done = asyncio.get_running_loop().create_future()
        lease.claiming = done
        try:
            # A shared store's claim is bounded: during a database failover it would otherwise wait for
            # its own pool and connect, and every request of the workspace in this process behind it.
            # (A memory store does no I/O, and a timer per claim would cost more than the claim.)
            claim = self.store.claim(key, self.lease, self.rate, now)
            grant = await (asyncio.wait_for(claim, CLAIM_TIMEOUT_S) if self.store.shared else claim)
        except Exception:
            # Fail open: the limit keeps tenants fair, and an unreachable store must not take the SCIM
            # API down with it. The lease bounds how often a broken store is asked.
            log.exception("ratelimit.store_failed", key=key)
            grant = Grant(self.lease)
        finally:
            lease.claiming = None
            done.set_result(None)
        lease.tokens += grant.granted
        if not grant.granted:
            lease.refused_until = now + grant.retry_after
        return grant

    async def close(self) -> None:
        await self.store.close()
