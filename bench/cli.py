"""``python -m bench``: start the servers, seed, measure, print tables, write JSON."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from bench import report
from bench.echo import EchoServer
from bench.options import Options, parse
from bench.peer import PeerServer
from bench.pinning import Pinning
from bench.runner import Measurement, TargetRun, measure, measure_ceiling
from bench.scenarios import BY_NAME
from bench.server import ProvisioServer
from bench.target import Target
from bench.webhook_sink import WebhookSink


def _run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _seats(users: int) -> int:
    # Room for the seeded users and everything POST adds while measuring.
    return users * 2 + 1_000_000


def _measure_provisio(
    backend: str, opts: Options, pinning: Pinning, users: int, scenarios: tuple[str, ...]
) -> TargetRun:
    print(f"provisio on {backend}: starting, seeding {users:,} users", file=sys.stderr, flush=True)
    profile = opts.profile_dir / f"{backend}-{users}.prof" if opts.profile_dir else None
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(WebhookSink()) if opts.webhook else None
        with ProvisioServer(
            backend,
            pinning,
            pg_admin_url=opts.pg_url,
            seats=_seats(users),
            profile=profile,
            rate_limit=opts.rate_limit,
            webhook_url=sink.url if sink is not None else None,
        ) as target:
            run: TargetRun = _run(measure(target, opts, pinning, users, scenarios))
            if sink is not None:
                # Delivered while the server ran: what the worker kept up with, not its backlog.
                run.webhook_deliveries = sink.count()
                print(f"  webhook receiver: {run.webhook_deliveries} deliveries", file=sys.stderr, flush=True)
        return run


def _measure_peer(opts: Options, pinning: Pinning, scenarios: tuple[str, ...]) -> TargetRun:
    print(f"reference server: starting, seeding {opts.users:,} users", file=sys.stderr, flush=True)
    with PeerServer(pinning) as target:
        peer_target: Target = target
        run: TargetRun = _run(measure(peer_target, opts, pinning, opts.users, scenarios))
        return run


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    pinning = Pinning.choose(opts.pin, opts.nice)
    pinning.pin_self()
    started = time.time()
    info = report.machine()
    ceiling: Measurement | None = None
    if opts.ceiling:
        with EchoServer(pinning) as echo:
            ceiling = _run(measure_ceiling(echo, opts))
    runs: list[TargetRun] = []

    if opts.scale:
        scenarios = tuple(n for n in opts.scenarios if BY_NAME[n].in_scale)
        for backend in opts.backends:
            for users in opts.users_list:
                runs.append(_measure_provisio(backend, opts, pinning, users, scenarios))
    else:
        for backend in opts.backends:
            runs.append(_measure_provisio(backend, opts, pinning, opts.users, opts.scenarios))
        if opts.peer:
            runs.append(_measure_peer(opts, pinning, opts.scenarios))

    ratios = report.ratio_rows(runs)
    scale = report.scale_rows(runs) if opts.scale else []
    print()
    print(report.machine_line(info, pinning.describe()))
    print(
        f"{opts.concurrency} concurrent clients; {opts.seconds:g} s per scenario"
        f"{f' (at most {opts.requests} requests)' if opts.requests else ''} after {opts.warmup:g} s warm-up"
        f"{f'; reference list scenarios: {opts.peer_list_requests} requests' if opts.peer else ''}."
    )
    if ceiling is not None:
        print(report.ceiling_line(ceiling, opts.concurrency))
    for run in runs:
        print()
        print(report.target_table(run))
    if ratios:
        print()
        print(report.ratio_table(ratios))
    if scale:
        print()
        print(report.scale_table(scale))

    document = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": info,
        "pinning": pinning.describe(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "ceiling": ceiling.as_json() if ceiling else None,
        "runs": [r.as_json() for r in runs],
        "ratios": ratios,
        "scale": scale,
    }
    opts.json_out.parent.mkdir(parents=True, exist_ok=True)
    opts.json_out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    print(f"\nJSON: {opts.json_out}", file=sys.stderr)
    failures = sum(m.stats["errors"] for r in runs for m in r.measurements)
    return 1 if failures else 0
