"""The load generator: C concurrent keep-alive clients (aiohttp), closed loop, latency per request.

Each worker runs one operation at a time and starts the next as soon as it finished. A run stops after
``max_requests`` requests or ``seconds``, whichever comes first; requests still in flight then complete
and count. The generator's own CPU time is recorded so that a saturated generator shows in the report.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.noise import CpuSnapshot, CpuUse
from bench.target import Target

SCIM_JSON = "application/scim+json"


class ScenarioError(Exception):
    """A response the scenario did not expect (status or body)."""


@dataclass
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class ScimClient:
    """A thin aiohttp wrapper: bearer token, SCIM content type, bodies read whole."""

    def __init__(self, target: Target, connections: int, timeout: float = 300.0) -> None:
        self.target = target
        self.base = target.base_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections, ttl_dns_cache=None),
            timeout=aiohttp.ClientTimeout(total=timeout),
            headers={"Authorization": f"Bearer {target.token}", "Accept": SCIM_JSON},
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
        )

    async def close(self) -> None:
        await self._session.close()

    async def request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: Any = None
    ) -> Response:
        url = path if path.startswith("http") else self.base + path
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": SCIM_JSON} if data is not None else None
        async with self._session.request(method, url, params=params, data=data, headers=headers) as resp:
            return Response(resp.status, await resp.read())

    async def expect(
        self,
        status: int | tuple[int, ...],
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Response:
        response = await self.request(method, path, params=params, body=body)
        if response.status not in ((status,) if isinstance(status, int) else status):
            raise ScenarioError(
                f"{method} {path} {dict(params or {})}: {response.status} "
                f"{response.body[:300].decode(errors='replace')}"
            )
        return response


Op = Callable[[], Awaitable[None]]
OpFactory = Callable[[int], Op]  # worker index -> that worker's operation


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class RunStats:
    requests: int
    errors: int
    wall_s: float
    cpu: CpuUse
    latencies_ms: list[float] = field(repr=False)
    error_samples: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "wall_s": round(self.wall_s, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(percentile(lat, 0.50), 2),
            "p90_ms": round(percentile(lat, 0.90), 2),
            "p99_ms": round(percentile(lat, 0.99), 2),
            "max_ms": round(lat[-1], 2) if lat else 0.0,
            "mean_ms": round(sum(lat) / len(lat), 2) if lat else 0.0,
            # Shares of one core: the generator near 1.0 may be the bottleneck; "other" is noise.
            "server_cpu": round(self.cpu.server, 3),
            "database_cpu": round(self.cpu.database, 3),
            "generator_cpu": round(self.cpu.generator, 3),
            "other_cpu": round(self.cpu.other, 3),
            "error_samples": self.error_samples,
        }


async def run_load(
    factory: OpFactory,
    *,
    concurrency: int,
    max_requests: int | None,
    seconds: float,
    server_pid: int | None,
    database_marker: str | None = None,
) -> RunStats:
    """Drive ``concurrency`` workers until ``max_requests`` were issued or ``seconds`` passed."""
    ops = [factory(w) for w in range(concurrency)]
    latencies: list[float] = []
    samples: list[str] = []
    issued = 0
    errors = 0
    limit = max_requests if max_requests is not None else math.inf
    start = time.perf_counter()
    deadline = start + seconds
    before = CpuSnapshot.take(server_pid, database_marker)

    async def worker(op: Op) -> None:
        nonlocal issued, errors
        while issued < limit and time.perf_counter() < deadline:
            issued += 1
            t0 = time.perf_counter()
            try:
                await op()
            except (TimeoutError, ScenarioError, aiohttp.ClientError, ValueError, KeyError) as exc:
                errors += 1
                if len(samples) < 3:
                    samples.append(f"{type(exc).__name__}: {exc}"[:400])
                continue
            latencies.append((time.perf_counter() - t0) * 1000.0)

    await asyncio.gather(*(worker(op) for op in ops))
    after = CpuSnapshot.take(server_pid, database_marker)
    return RunStats(
        requests=len(latencies),
        errors=errors,
        wall_s=after.wall - start,
        cpu=CpuUse.between(before, after),
        latencies_ms=latencies,
        error_samples=samples,
    )
