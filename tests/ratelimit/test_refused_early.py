"""A credential just refused is refused again before its request costs a database statement, until its
workspace's bucket has a token again; nobody else's credential is refused early."""

from __future__ import annotations

from provisio.ratelimit import Limiter, Rate
from provisio.ratelimit.core import MAX_REMEMBERED_REFUSALS, MemoryStore
from tests.ratelimit.test_store_contract import START, Clock

RATE = Rate(per_second=2.0, burst=3)


async def _refused_limiter() -> tuple[Limiter, Clock]:
    clock = Clock()
    limiter = Limiter(MemoryStore(), RATE, clock=clock)
    for _ in range(RATE.burst):
        assert await limiter.admit("scim:a") is None
    assert await limiter.admit("scim:a") is not None
    limiter.remember_refusal("a\x00Bearer good", "scim:a")
    return limiter, clock


async def test_a_refused_credential_is_refused_early_until_a_token_comes_back() -> None:
    limiter, clock = await _refused_limiter()
    early = limiter.refused_early("a\x00Bearer good")
    assert early is not None and 0 < early.retry_after <= RATE.interval
    clock.advance(RATE.interval)
    assert limiter.refused_early("a\x00Bearer good") is None
    assert await limiter.admit("scim:a") is None
    assert clock.now > START


async def test_other_credentials_are_never_refused_early() -> None:
    limiter, _ = await _refused_limiter()
    assert limiter.refused_early("a\x00Bearer guessed") is None
    assert limiter.refused_early("b\x00Bearer good") is None


async def test_remembered_refusals_are_bounded() -> None:
    limiter, _ = await _refused_limiter()
    for i in range(MAX_REMEMBERED_REFUSALS + 10):
        limiter.remember_refusal(f"x{i}", "scim:a")
    assert len(limiter._refused_credentials) <= MAX_REMEMBERED_REFUSALS
