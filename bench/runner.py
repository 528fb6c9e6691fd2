"""Runs the scenarios against one started server and collects measurements."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.load import RunStats, ScimClient, run_load
from bench.neighbour import Neighbour, neighbour_of
from bench.neighbour import measure as noisy_neighbour
from bench.noise import database_pids, wait_for_quiet
from bench.options import SQL_SEED_ABOVE, Options
from bench.pinning import Pinning
from bench.scenarios import BY_NAME, Context, Scenario
from bench.sqlseed import seed_neighbour, seed_sql, settle
from bench.target import Target
from bench.users import SeededUser, seed

SQL_TEMPLATE_USERS = 100  # seeded through the API before the SQL clone, which copies the first


@dataclass
class Measurement:
    label: str  # "sqlite", "postgresql", "peer", "ceiling"
    users: int
    scenario: str
    repeat: int
    stats: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "users": self.users,
            "scenario": self.scenario,
            "repeat": self.repeat,
            **self.stats,
        }


@dataclass
class TargetRun:
    label: str
    users: int
    seed_seconds: float
    seed_method: str
    measurements: list[Measurement] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # scenario -> why
    webhook_deliveries: int | None = None  # with --webhook: what the receiver got (seeding included)

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "users": self.users,
            "seed_seconds": round(self.seed_seconds, 2),
            "seed_rate": round(self.users / self.seed_seconds, 1) if self.seed_seconds else None,
            "seed_method": self.seed_method,
            "skipped": self.skipped,
            "webhook_deliveries": self.webhook_deliveries,
            "measurements": [m.as_json() for m in self.measurements],
        }


def _limits(scenario: Scenario, opts: Options, is_peer: bool) -> tuple[int | None, float, float]:
    """(max requests, measured seconds, warm-up seconds) for one scenario on one target."""
    if is_peer and scenario.slow_on_peer:
        # One page takes the reference server seconds: a fixed small number of requests, no warm-up.
        return opts.peer_list_requests, max(opts.seconds * 10, 120.0), 0.0
    return opts.requests, opts.seconds, opts.warmup


def _progress(label: str, users: int, scenario: str, repeat: int, stats: RunStats) -> None:
    s = stats.summary()
    print(
        f"  {label:<10} N={users:<7} {scenario:<16} #{repeat} {s['rps']:>9.1f} req/s"
        f"  p50 {s['p50_ms']:>8.2f} ms  p99 {s['p99_ms']:>8.2f} ms"
        f"  n={s['requests']} err={s['errors']}"
        f"  cpu server {s['server_cpu']:.0%} db {s['database_cpu']:.0%}"
        f" gen {s['generator_cpu']:.0%} other {s['other_cpu']:.0%}",
        file=sys.stderr,
        flush=True,
    )
    for sample in s["error_samples"]:
        print(f"      error: {sample}", file=sys.stderr, flush=True)


def _neighbour_progress(label: str, s: dict[str, Any]) -> None:
    alone, flooded = s["neighbour_alone"], s["neighbour_flooded"]
    print(
        f"  {label:<10} noisy_neighbour: B at {alone['rate']:g} req/s p99 alone {alone['p99_ms']:.2f} ms, "
        f"with A flooding {flooded['p99_ms']:.2f} ms ({s['p99_ratio']}x); A {s['rps']:.1f} req/s, "
        f"{s['flood_refused']} refused (429); B errors {alone['errors']}+{flooded['errors']}",
        file=sys.stderr,
        flush=True,
    )


async def _seed(
    client: ScimClient, target: Target, opts: Options, users: int
) -> tuple[list[SeededUser], float, str, Neighbour | None]:
    """Seed through the API, or (large N) a template through it and the rest straight into the database;
    provisio's database also gets a neighbour workspace of as many members (a multi-tenant database)."""
    method = opts.seed_method
    if method == "auto":
        method = "sql" if users > SQL_SEED_ABOVE else "api"
    if target.database_url is None:  # the reference server
        seeded, seconds = await seed(client, users, opts.seed_concurrency, target.label)
        return seeded, seconds, "api", None
    if method == "api":
        seeded, seconds = await seed(client, users, opts.seed_concurrency, target.label)
        described = "api"
    else:
        head = min(users, SQL_TEMPLATE_USERS)
        seeded, api_seconds = await seed(client, head, opts.seed_concurrency, target.label)
        rest, sql_seconds = await seed_sql(target.database_url, seeded[0].id, head, users - head)
        seeded, seconds = seeded + rest, api_seconds + sql_seconds
        described = f"sql (first {head} through the API)"
    began = time.perf_counter()
    key, members = await seed_neighbour(target.database_url, seeded[0].id, users)
    await settle(target.database_url)
    seconds += time.perf_counter() - began
    neighbour = neighbour_of(target, key, members)
    return seeded, seconds, f"{described}, beside a neighbour workspace of {users:,} members", neighbour


async def measure(
    target: Target, opts: Options, pinning: Pinning, users: int, scenario_names: tuple[str, ...]
) -> TargetRun:
    """Seed ``users`` users into ``target`` and run the scenarios on it."""
    is_peer = target.label == "peer"
    client = ScimClient(target, connections=max(opts.concurrency, opts.seed_concurrency))
    try:
        seeded, seed_seconds, method, neighbour = await _seed(client, target, opts, users)
        print(
            f"  seeded {users} users into {target.label} in {seed_seconds:.1f} s "
            f"({users / seed_seconds:.0f}/s)",
            file=sys.stderr,
            flush=True,
        )
        run = TargetRun(label=target.label, users=users, seed_seconds=seed_seconds, seed_method=method)
        ctx = Context(
            client=client, target=target, users=seeded, seed=users, tag=f"{int(time.time() * 1000):x}"
        )
        for name in scenario_names:
            scenario = BY_NAME[name]
            if is_peer and not scenario.peer_supported:
                run.skipped[name] = "not supported by the reference server as start-peer.sh installs it"
                continue
            if scenario.with_neighbour:
                if neighbour is None:
                    run.skipped[name] = "needs the neighbour workspace provisio's database gets"
                    continue
                for repeat in range(opts.repeat):
                    stats = await noisy_neighbour(
                        target,
                        seeded,
                        neighbour,
                        concurrency=opts.concurrency,
                        rate=opts.neighbour_rate,
                        seconds=opts.seconds,
                    )
                    _neighbour_progress(target.label, stats)
                    run.measurements.append(Measurement(target.label, users, name, repeat + 1, stats))
                continue
            max_requests, seconds, warmup = _limits(scenario, opts, is_peer)
            factory = scenario.build(ctx)
            pinning.renice(database_pids(target.database_marker))
            if opts.quiet_wait > 0:
                await wait_for_quiet(opts.quiet_wait)
            if warmup > 0:
                await run_load(
                    factory, concurrency=opts.concurrency, max_requests=None, seconds=warmup, server_pid=None
                )
            for repeat in range(opts.repeat):
                stats = await run_load(
                    factory,
                    concurrency=opts.concurrency,
                    max_requests=max_requests,
                    seconds=seconds,
                    server_pid=target.pid,
                    database_marker=target.database_marker,
                )
                _progress(target.label, users, name, repeat + 1, stats)
                run.measurements.append(Measurement(target.label, users, name, repeat + 1, stats.summary()))
        return run
    finally:
        await client.close()


async def measure_ceiling(target: Target, opts: Options) -> Measurement:
    """The load generator against a trivial HTTP server on the server's core: the most it can measure."""
    client = ScimClient(target, connections=opts.concurrency)
    try:
        ctx = Context(client=client, target=target, users=[], seed=0, tag="ceiling")
        factory = BY_NAME["trivial"].build(ctx)
        await run_load(
            factory, concurrency=opts.concurrency, max_requests=None, seconds=opts.warmup, server_pid=None
        )
        stats = await run_load(
            factory,
            concurrency=opts.concurrency,
            max_requests=None,
            seconds=min(opts.seconds, 5.0),
            server_pid=target.pid,
        )
    finally:
        await client.close()
    _progress("ceiling", 0, "trivial", 1, stats)
    return Measurement("ceiling", 0, "trivial", 1, stats.summary())
