"""The benchmark's scenarios. Each builds one operation per worker; the loader times them."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

from bench.load import Op, OpFactory, ScenarioError, ScimClient
from bench.target import Target
from bench.users import DOMAIN, SeededUser, new_user, patch_display_name, put_user

PAGE = 100


@dataclass
class Context:
    client: ScimClient
    target: Target
    users: list[SeededUser]
    seed: int
    tag: str  # unique per server run, for the userNames POST creates

    def rng(self, worker: int) -> random.Random:
        return random.Random(self.seed * 1000 + worker)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    build: Callable[[Context], OpFactory]
    group: str  # "trivial" | "lookup" | "list" | "write"
    peer_ratio_target: float | None = None  # provisio req/s over the reference server's, at least this
    slow_on_peer: bool = False  # the reference server takes seconds: bound it by --peer-list-requests
    peer_supported: bool = True
    in_scale: bool = False
    with_neighbour: bool = False  # run by bench.neighbour: A floods with this scenario's op beside B


def _trivial(ctx: Context) -> OpFactory:
    def factory(worker: int) -> Op:
        async def op() -> None:
            await ctx.client.expect(200, "GET", ctx.target.trivial_url)

        return op

    return factory


def _get_by_id(ctx: Context) -> OpFactory:
    def factory(worker: int) -> Op:
        rng = ctx.rng(worker)

        async def op() -> None:
            await ctx.client.expect(200, "GET", f"/Users/{rng.choice(ctx.users).id}")

        return op

    return factory


def _filter_user_name(ctx: Context) -> OpFactory:
    """Okta's lookup before a create: ``filter=userName eq "…"&startIndex=1&count=100``."""

    def factory(worker: int) -> Op:
        rng = ctx.rng(worker)

        async def op() -> None:
            user = rng.choice(ctx.users)
            params = {"filter": f'userName eq "{user.user_name}"', "startIndex": "1", "count": "100"}
            body = (await ctx.client.expect(200, "GET", "/Users", params=params)).json()
            if body.get("totalResults") != 1:
                raise ScenarioError(f"filter on {user.user_name} found {body.get('totalResults')} users")

        return op

    return factory


def _list_page(
    ctx: Context, start_index: Callable[[random.Random], int], extra: dict[str, str] | None = None
) -> OpFactory:
    """Pages of ``PAGE`` users from ``start_index``, with ``extra`` parameters that keep every user listed."""

    def factory(worker: int) -> Op:
        rng = ctx.rng(worker)

        async def op() -> None:
            start = start_index(rng)
            params = {"startIndex": str(start), "count": str(PAGE)} | (extra or {})
            body = (await ctx.client.expect(200, "GET", "/Users", params=params)).json()
            if body.get("totalResults") != len(ctx.users):
                raise ScenarioError(f"totalResults {body.get('totalResults')}, not {len(ctx.users)}")
            expected = min(PAGE, len(ctx.users) - start + 1)
            if len(body.get("Resources", [])) < expected:
                raise ScenarioError(
                    f"page at {start} had {len(body.get('Resources', []))} of {expected} users"
                )

        return op

    return factory


def _list_first(ctx: Context) -> OpFactory:
    return _list_page(ctx, lambda rng: 1)


def _list_deep(ctx: Context) -> OpFactory:
    """A page of 100 that starts near the end: ``startIndex`` in N-199 … N-100 (so it is always full)."""
    n = len(ctx.users)
    return _list_page(ctx, lambda rng: max(1, n - 199 + rng.randrange(100)))


def _list_middle(ctx: Context) -> OpFactory:
    """A page of 100 around the middle, ``startIndex`` in N/2-50 … N/2+49: the most rows an offset page
    skips, from either end (deep pages are counted from the nearer end)."""
    n = len(ctx.users)
    return _list_page(ctx, lambda rng: max(1, n // 2 - 50 + rng.randrange(100)))


# Every seeded user has a work e-mail (``users.new_user``): the filter keeps them all, but its total is not
# known before the page is read, so a deep page steps through the rows before it, testing each.
_EVERY_USER = {"filter": 'emails.type eq "work"'}


def _list_filtered_deep(ctx: Context) -> OpFactory:
    """``_list_deep``'s pages through a filter that every user matches."""
    n = len(ctx.users)
    return _list_page(ctx, lambda rng: max(1, n - 199 + rng.randrange(100)), _EVERY_USER)


def _list_sorted_deep(ctx: Context) -> OpFactory:
    """``_list_filtered_deep``'s pages in userName order."""
    n = len(ctx.users)
    return _list_page(
        ctx, lambda rng: max(1, n - 199 + rng.randrange(100)), _EVERY_USER | {"sortBy": "userName"}
    )


def _list_cursor(ctx: Context) -> OpFactory:
    """RFC 9865: ``cursor=`` then each ``nextCursor``; every page is one sample, starting over at the end."""

    def factory(worker: int) -> Op:
        cursor = ""

        async def op() -> None:
            nonlocal cursor
            params = {"cursor": cursor, "count": str(PAGE)}
            body = (await ctx.client.expect(200, "GET", "/Users", params=params)).json()
            if not body.get("Resources"):
                raise ScenarioError(f"cursor page {cursor[:20]!r} is empty")
            cursor = str(body.get("nextCursor") or "")

        return op

    return factory


def _put(ctx: Context) -> OpFactory:
    def factory(worker: int) -> Op:
        rng = ctx.rng(worker)
        serial = count()

        async def op() -> None:
            user = rng.choice(ctx.users)
            body = put_user(user, f"Given{worker}-{next(serial)}")
            await ctx.client.expect(200, "PUT", f"/Users/{user.id}", body=body)

        return op

    return factory


def _patch(ctx: Context) -> OpFactory:
    def factory(worker: int) -> Op:
        rng = ctx.rng(worker)
        serial = count()

        async def op() -> None:
            # A new value each time, so that every PATCH really writes.
            value = f"x{worker}-{next(serial)}"
            await ctx.client.expect(
                (200, 204), "PATCH", f"/Users/{rng.choice(ctx.users).id}", body=patch_display_name(value)
            )

        return op

    return factory


def _post(ctx: Context) -> OpFactory:
    serial = count()  # shared by every worker and every run of this scenario: names never repeat

    def factory(worker: int) -> Op:
        async def op() -> None:
            index = next(serial)
            name = f"new-{ctx.tag}-{index}@{DOMAIN}"
            await ctx.client.expect(201, "POST", "/Users", body=new_user(name, 10_000_000 + index))

        return op

    return factory


# Reads first, writes after them, POST last: list scenarios see exactly the seeded N.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("trivial", "GET /healthz (the reference server: /ServiceProviderConfig)", _trivial, "trivial"),
    Scenario(
        "get_by_id",
        "GET /Users/{id}, random existing id",
        _get_by_id,
        "lookup",
        peer_ratio_target=1.5,
        in_scale=True,
    ),
    Scenario(
        "filter_username",
        'GET /Users?filter=userName eq "…"&startIndex=1&count=100',
        _filter_user_name,
        "lookup",
        peer_ratio_target=1.5,
        in_scale=True,
    ),
    Scenario(
        "list_first",
        "GET /Users?startIndex=1&count=100",
        _list_first,
        "list",
        peer_ratio_target=50.0,
        slow_on_peer=True,
        in_scale=True,
    ),
    Scenario(
        "list_deep",
        "GET /Users?startIndex≈N-150&count=100",
        _list_deep,
        "list",
        peer_ratio_target=50.0,
        slow_on_peer=True,
        in_scale=True,
    ),
    Scenario(
        "list_middle",
        "GET /Users?startIndex≈N/2&count=100 (the worst offset page)",
        _list_middle,
        "list",
        slow_on_peer=True,
        in_scale=True,
    ),
    # Reported without a target: a filtered page steps through the matching rows before it, so it grows
    # with N (not in --scale); what must not happen is a deep page costing N times that.
    Scenario(
        "list_filtered_deep",
        'GET /Users?filter=emails.type eq "work"&startIndex≈N-150&count=100 (every user matches)',
        _list_filtered_deep,
        "list",
        peer_supported=False,
    ),
    Scenario(
        "list_sorted_deep",
        'GET /Users?filter=emails.type eq "work"&sortBy=userName&startIndex≈N-150&count=100',
        _list_sorted_deep,
        "list",
        peer_supported=False,
    ),
    Scenario(
        "list_cursor",
        "GET /Users?cursor=…&count=100, following nextCursor",
        _list_cursor,
        "list",
        slow_on_peer=True,
        peer_supported=False,
        in_scale=True,
    ),
    Scenario(
        "put",
        "PUT /Users/{id}, Okta's shape (userName, name, emails, active)",
        _put,
        "write",
        peer_ratio_target=1.5,
    ),
    Scenario("patch", "PATCH /Users/{id}, replace displayName", _patch, "write", peer_ratio_target=1.5),
    # In --scale too: creating a user checks seats and uniqueness, which must not grow with N either.
    Scenario("post", "POST /Users, a new unique user", _post, "write", in_scale=True),
    Scenario(
        "noisy_neighbour",
        "A floods GET /Users/{id} at full concurrency beside B at a steady rate (B's p99 against B alone)",
        _get_by_id,
        "isolation",
        peer_supported=False,
        with_neighbour=True,
    ),
)

BY_NAME = {s.name: s for s in SCENARIOS}
