"""Command-line options of ``python -m bench``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.scenarios import BY_NAME, SCENARIOS
from bench.server import BACKENDS, DEFAULT_PG_URL

SQL_SEED_ABOVE = 20_000
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Options:
    users: int
    users_list: tuple[int, ...]
    concurrency: int
    seconds: float
    requests: int | None
    warmup: float
    repeat: int
    backends: tuple[str, ...]
    peer: bool
    peer_list_requests: int
    scale: bool
    scenarios: tuple[str, ...]
    seed_concurrency: int
    seed_method: str
    pin: bool
    ceiling: bool
    pg_url: str
    json_out: Path
    quick: bool
    quiet_wait: float
    profile_dir: Path | None
    nice: int
    rate_limit: tuple[float, int] | None
    neighbour_rate: float
    webhook: bool


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v.replace("_", "")) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("every user count must be at least 1")
    return values


def _rate_limit(text: str) -> tuple[float, int] | None:
    if text.strip() == "0":
        return None
    try:
        rate, burst = text.split(",")
        return float(rate), int(burst)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RATE,BURST (or 0 for off), got {text!r}") from None


def _names(allowed: tuple[str, ...], what: str) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; choose from {', '.join(allowed)}")
        return names

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="SCIM load benchmark of provisio on SQLite and PostgreSQL, against a reference server.",
    )
    p.add_argument("--users", type=int, default=10_000, help="users seeded before measuring (default 10000)")
    p.add_argument("--concurrency", "-c", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scenario (default 10)")
    p.add_argument(
        "--requests",
        type=int,
        default=None,
        help="stop each scenario after this many requests instead (still bounded by --seconds)",
    )
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each scenario")
    p.add_argument("--repeat", type=int, default=1, help="run each scenario this many times (shows noise)")
    p.add_argument(
        "--backends",
        type=_names(BACKENDS, "backend"),
        default=BACKENDS,
        help="comma-separated: sqlite,postgresql (default both)",
    )
    p.add_argument(
        "--scenarios",
        type=_names(tuple(BY_NAME), "scenario"),
        default=tuple(BY_NAME),
        help=f"comma-separated subset of {','.join(BY_NAME)}",
    )
    p.add_argument(
        "--peer",
        action="store_true",
        help="also run against ../shared/conformance/start-peer.sh and print provisio/peer ratios",
    )
    p.add_argument(
        "--peer-list-requests",
        type=int,
        default=16,
        help="requests per list scenario on the reference server (it needs ~2 s a page)",
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="instead: lookups and list pages at each --users-list size, and their cost ratio",
    )
    p.add_argument(
        "--users-list",
        type=_ints,
        default=(1_000, 100_000),
        help="user counts for --scale (default 1000,100000)",
    )
    p.add_argument("--seed-concurrency", type=int, default=16, help="concurrent clients while seeding")
    p.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the server to CPU 0 and the load generator to CPU 1",
    )
    p.add_argument(
        "--no-ceiling",
        dest="ceiling",
        action="store_false",
        help="skip measuring the load generator against a trivial server",
    )
    p.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="PostgreSQL server where a uniquely named database is created and dropped",
    )
    p.add_argument(
        "--json-out",
        type=Path,
        default=None,
        help="where to write the JSON results (default bench/results/bench-<time>.json)",
    )
    p.add_argument(
        "--seed",
        choices=("auto", "api", "sql"),
        default="auto",
        help="how provisio is seeded: through the SCIM API, or the first 100 users through it and the rest "
        f"cloned straight into the database (auto: sql above {SQL_SEED_ABOVE} users); the reference server "
        "is always seeded through its API",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each scenario, wait up to this long until other processes use under 15%% of a core "
        "(the tables show the other processes' CPU either way)",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="scheduling priority of the server, its PostgreSQL backends and the load generator, e.g. -10 "
        "on a shared machine (needs root; default 0: unchanged)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run each provisio server under cProfile and write DIR/<backend>-<users>.prof (slows it down)",
    )
    p.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=(1_000_000.0, 400),
        metavar="RATE,BURST",
        help="the server's per-workspace SCIM rate limit (default 1000000,400: on, with the default "
        "burst and so the default lease, but never refusing, so that its cost is measured; 0: off)",
    )
    p.add_argument(
        "--neighbour-rate",
        type=float,
        default=20.0,
        help="req/s workspace B sends in the noisy_neighbour scenario (default 20, about Entra's pace)",
    )
    p.add_argument(
        "--webhook",
        action="store_true",
        help="register a deployment-wide webhook endpoint (a local receiver answering 204) on each provisio "
        "server, delivered to by the outbox worker inside it as in production: compare with a run without",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 300 users (200,2000 with --scale), 1.5 s per scenario",
    )
    return p


def parse(argv: list[str] | None = None) -> Options:
    args = parser().parse_args(argv)
    quick = bool(args.quick)
    users = args.users if args.users != 10_000 or not quick else 300
    users_list = args.users_list if args.users_list != (1_000, 100_000) or not quick else (200, 2_000)
    if users < 1:
        parser().error("--users must be at least 1")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_out = args.json_out or RESULTS_DIR / f"bench-{'scale-' if args.scale else ''}{stamp}.json"
    return Options(
        users=users,
        users_list=users_list,
        concurrency=max(1, args.concurrency),
        seconds=1.5 if quick and args.seconds == 10.0 else args.seconds,
        requests=args.requests,
        warmup=0.3 if quick and args.warmup == 1.0 else args.warmup,
        repeat=max(1, args.repeat),
        backends=tuple(args.backends),
        peer=bool(args.peer),
        peer_list_requests=4 if quick and args.peer_list_requests == 16 else max(1, args.peer_list_requests),
        scale=bool(args.scale),
        scenarios=tuple(s.name for s in SCENARIOS if s.name in args.scenarios),
        seed_concurrency=max(1, args.seed_concurrency),
        seed_method=args.seed,
        pin=bool(args.pin),
        ceiling=bool(args.ceiling),
        pg_url=args.pg_url,
        json_out=json_out,
        quick=quick,
        quiet_wait=max(0.0, args.quiet_wait),
        profile_dir=args.profile,
        nice=args.nice,
        rate_limit=args.rate_limit,
        neighbour_rate=max(0.1, args.neighbour_rate),
        webhook=bool(args.webhook),
    )
