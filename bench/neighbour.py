"""The noisy-neighbour scenario: workspace A floods the server while workspace B (the neighbour the
benchmark seeds beside it) sends at a modest steady rate; B's latency with A flooding against B alone.

B runs open loop (a request every 1/rate seconds, however long the previous one takes), the way an IdP
syncing a directory sends; A runs closed loop at full concurrency, and a 429 from its rate limit is an
answer, not an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from bench.load import Op, OpFactory, ScenarioError, ScimClient, percentile, run_load
from bench.server import provisio_executable
from bench.target import Target
from bench.users import SeededUser


@dataclass(frozen=True)
class Neighbour:
    """Workspace B: its Tenant URL, a token of its own, and its members."""

    base_url: str
    token: str
    users: list[SeededUser]


def neighbour_of(target: Target, key: str, users: list[SeededUser]) -> Neighbour:
    """Issue a token for the seeded neighbour workspace ``key`` with the CLI, as an operator would (after
    giving it a verified domain of its own: credentials are issued only to a workspace that has one)."""
    assert target.database_url is not None
    env = os.environ | {"PROVISIO_DATABASE_URL": target.database_url}
    for args in (("domain", "add", key, f"{key}.bench.test", "--verified"), ("token", "create", key)):
        done = subprocess.run(
            [provisio_executable(), *args, "--json"], env=env, capture_output=True, text=True, check=True
        )
    token = str(json.loads(done.stdout)["token"])
    return Neighbour(base_url=target.base_url.rsplit("/", 1)[0] + "/" + key, token=token, users=users)


def flood(client: ScimClient, users: list[SeededUser], refused: list[int]) -> OpFactory:
    """A's requests: GET by id as fast as each worker can; a 429 is counted in ``refused[0]``."""

    def factory(worker: int) -> Op:
        rng = random.Random(worker)

        async def op() -> None:
            response = await client.expect((200, 429), "GET", f"/Users/{rng.choice(users).id}")
            if response.status == 429:
                refused[0] += 1

        return op

    return factory


async def steady(client: ScimClient, users: list[SeededUser], rate: float, seconds: float) -> dict[str, Any]:
    """B's requests: GET by id every 1/``rate`` s for ``seconds``; its latency summary."""
    rng = random.Random(0)
    latencies: list[float] = []
    errors: list[str] = []

    async def one() -> None:
        t0 = time.perf_counter()
        try:
            await client.expect(200, "GET", f"/Users/{rng.choice(users).id}")
        except (ScenarioError, TimeoutError) as exc:
            errors.append(str(exc)[:200])
            return
        latencies.append((time.perf_counter() - t0) * 1000.0)

    start = time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    lat = sorted(latencies)
    return {
        "rate": rate,
        "requests": len(lat),
        "errors": len(errors),
        "p50_ms": round(percentile(lat, 0.50), 2),
        "p99_ms": round(percentile(lat, 0.99), 2),
        "max_ms": round(lat[-1], 2) if lat else 0.0,
        "error_samples": errors[:3],
    }


async def measure(
    target: Target,
    a_users: list[SeededUser],
    neighbour: Neighbour,
    *,
    concurrency: int,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    """B alone, then B while A floods: both of B's summaries, A's throughput and refusals, the p99 ratio."""
    a_client = ScimClient(target, connections=concurrency)
    b_target = Target("neighbour", neighbour.base_url, neighbour.token, target.trivial_url, target.pid)
    b_client = ScimClient(b_target, connections=max(4, int(rate)))
    try:
        alone = await steady(b_client, neighbour.users, rate, seconds)
        refused = [0]
        flooding, beside = await asyncio.gather(
            run_load(
                flood(a_client, a_users, refused),
                concurrency=concurrency,
                max_requests=None,
                seconds=seconds,
                server_pid=target.pid,
                database_marker=target.database_marker,
            ),
            steady(b_client, neighbour.users, rate, seconds),
        )
    finally:
        await a_client.close()
        await b_client.close()
    a = flooding.summary()
    return {
        **a,  # A's flood, in the shape of every other scenario's figures
        "flood_refused": refused[0],
        "neighbour_alone": alone,
        "neighbour_flooded": beside,
        "p99_ratio": round(beside["p99_ms"] / alone["p99_ms"], 2) if alone["p99_ms"] else None,
    }
