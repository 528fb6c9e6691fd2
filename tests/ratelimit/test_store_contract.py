"""The contract every limiter store keeps (memory, SQL on SQLite and PostgreSQL, Redis): a bucket gives
its burst and then refuses, refills at the rate, says truly when the next token comes, and several
limiters (server processes) sharing it never admit more than ``rate * t + burst`` plus one lease each.
Time comes from a clock the test turns; the stores take it from the caller."""

from __future__ import annotations

import asyncio
import random

import pytest

from provisio.ratelimit import Limiter, LimiterStore, Rate, Refused

START = 1_800_000_000.0  # seconds since the epoch: a magnitude that real clocks give
RATE = Rate(per_second=50.0, burst=40)
# A TAT near START is a double with steps of ~2.4e-7 s: times compare to well within a token's 20 ms.
TIME = 1e-5


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def test_burst_then_refuse(store: LimiterStore, key: str) -> None:
    for _ in range(RATE.burst):
        assert (await store.claim(key, 1, RATE, START)).granted == 1
    refused = await store.claim(key, 1, RATE, START)
    assert refused.granted == 0
    assert refused.retry_after == pytest.approx(RATE.interval, abs=TIME)


async def test_a_claim_takes_what_is_left(store: LimiterStore, key: str) -> None:
    assert (await store.claim(key, 15, RATE, START)).granted == 15
    assert (await store.claim(key, 15, RATE, START)).granted == 15
    assert (await store.claim(key, 15, RATE, START)).granted == RATE.burst - 30
    assert (await store.claim(key, 15, RATE, START)).granted == 0


async def test_refills_at_the_rate_and_no_faster(store: LimiterStore, key: str) -> None:
    assert (await store.claim(key, RATE.burst, RATE, START)).granted == RATE.burst
    later = START + 7 * RATE.interval
    assert (await store.claim(key, 100, RATE, later)).granted == 7
    assert (await store.claim(key, 1, RATE, later)).granted == 0
    # Idle for long: full again, but never more than the burst.
    much_later = later + 3600
    assert (await store.claim(key, 1000, RATE, much_later)).granted == RATE.burst


async def test_retry_after_is_when_the_next_token_comes(store: LimiterStore, key: str) -> None:
    await store.claim(key, RATE.burst, RATE, START)
    now = START + 0.3 * RATE.interval
    refused = await store.claim(key, 1, RATE, now)
    assert refused.granted == 0
    assert refused.retry_after == pytest.approx(0.7 * RATE.interval, abs=TIME)
    assert (await store.claim(key, 1, RATE, now + refused.retry_after * 0.9)).granted == 0
    assert (await store.claim(key, 1, RATE, now + refused.retry_after)).granted == 1


async def test_workspaces_are_independent(store: LimiterStore, key: str) -> None:
    other = key + ":other"
    assert (await store.claim(key, RATE.burst, RATE, START)).granted == RATE.burst
    assert (await store.claim(key, 1, RATE, START)).granted == 0
    assert (await store.claim(other, RATE.burst, RATE, START)).granted == RATE.burst


async def test_limiter_refuses_with_the_wait_and_admits_after_it(store: LimiterStore, key: str) -> None:
    clock = Clock()
    limiter = Limiter(store, RATE, lease=4, clock=clock)
    verdicts = [await limiter.admit(key) for _ in range(RATE.burst + 1)]
    assert verdicts[: RATE.burst] == [None] * RATE.burst
    refused = verdicts[-1]
    assert isinstance(refused, Refused)
    assert 0 < refused.retry_after <= RATE.interval + TIME
    clock.advance(refused.retry_after)
    assert await limiter.admit(key) is None


async def test_two_processes_never_exceed_rate_times_t_plus_burst(store: LimiterStore, key: str) -> None:
    """Two limiters on one store, each claiming leases of burst/20, with demand far above the rate:
    in every window of the run, admissions stay within rate * w + burst + 2 leases; and the store is
    not starved either: in all, the limiters admit all but a few leases of what the rate allows."""
    clock = Clock()
    lease = RATE.burst // 20  # what a limiter on a shared store claims (the memory store is one here)
    processes = [Limiter(store, RATE, lease=lease, clock=clock) for _ in range(2)]
    rng = random.Random(7)
    step, seconds = RATE.interval / 2, 4.0
    admitted_at: list[float] = []
    while clock.now - START < seconds:
        for limiter in processes:
            for _ in range(rng.randrange(0, 4)):
                if await limiter.admit(key) is None:
                    admitted_at.append(clock.now - START)
        clock.advance(step)
    slack = len(processes) * lease
    times = sorted(admitted_at)
    for i, began in enumerate(times):  # every window that starts at an admission
        for j in range(i, len(times), 7):
            window = times[j] - began
            assert j - i + 1 <= RATE.per_second * window + RATE.burst + slack, (began, window)
    allowed = RATE.per_second * seconds + RATE.burst
    assert allowed - slack - 2 <= len(times) <= allowed + slack


async def test_concurrent_requests_share_one_claim(store: LimiterStore, key: str) -> None:
    """Requests that find the lease empty wait for the one claim in flight, instead of each asking the
    store: the store sees one round trip per lease."""
    calls = 0

    class Counting:
        shared = True

        async def claim(self, k: str, want: int, rate: Rate, now: float):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.001)  # a round trip, even to the memory store: others arrive meanwhile
            return await store.claim(k, want, rate, now)

        async def close(self) -> None:
            pass

    limiter = Limiter(Counting(), RATE, lease=10, clock=Clock())
    verdicts = await asyncio.gather(*(limiter.admit(key) for _ in range(30)))
    assert verdicts == [None] * 30
    assert calls == 3
