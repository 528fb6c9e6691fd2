"""CPU accounting from /proc: how busy the server was, and how much CPU other processes took meanwhile.

The benchmark pins the server and itself to one core each, but cannot keep other work off those cores.
A scenario that ran while something else used the machine shows it in "other CPU".
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU-seconds spent busy on all cores since boot (everything but idle and iowait)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def process_seconds(pid: int | None) -> float:
    """CPU-seconds used by ``pid`` (0 when unknown or gone)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def database_pids(marker: str | None) -> list[int]:
    """The PostgreSQL backends serving our database (their command line names it)."""
    if not marker:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres:") and marker.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def database_seconds(marker: str | None) -> float:
    """CPU-seconds used by the PostgreSQL backends serving our database."""
    return sum(process_seconds(pid) for pid in database_pids(marker))


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    machine: float
    server: float
    database: float
    generator: float

    @classmethod
    def take(cls, server_pid: int | None, database_marker: str | None = None) -> CpuSnapshot:
        return cls(
            time.perf_counter(),
            machine_busy_seconds(),
            process_seconds(server_pid),
            database_seconds(database_marker),
            time.process_time(),
        )


@dataclass(frozen=True)
class CpuUse:
    """Shares of one core over a run: 1.0 is one core fully busy."""

    server: float
    database: float  # PostgreSQL's backends for our database (SQLite runs inside the server)
    generator: float
    other: float

    @classmethod
    def between(cls, a: CpuSnapshot, b: CpuSnapshot) -> CpuUse:
        wall = max(b.wall - a.wall, 1e-9)
        server = (b.server - a.server) / wall
        database = (b.database - a.database) / wall
        generator = (b.generator - a.generator) / wall
        other = max(0.0, (b.machine - a.machine) / wall - server - database - generator)
        return cls(server=server, database=database, generator=generator, other=other)


async def wait_for_quiet(max_wait: float, threshold: float = 0.15, sample: float = 1.0) -> float:
    """Wait (at most ``max_wait`` s) until other processes use under ``threshold`` of a core.

    Called between scenarios, when the server and the generator are idle, so the machine's busy time
    is other processes'. Returns the last share measured.
    """
    deadline = time.monotonic() + max_wait
    announced = False
    while True:
        a = machine_busy_seconds() - time.process_time()
        t0 = time.perf_counter()
        await asyncio.sleep(sample)
        share = max(0.0, (machine_busy_seconds() - time.process_time() - a) / (time.perf_counter() - t0))
        if share < threshold or time.monotonic() >= deadline:
            if announced:
                print(f"  machine: other processes at {share:.0%} of a core; going on", file=sys.stderr)
            return share
        if not announced:
            print(
                f"  machine busy: other processes use {share:.0%} of a core; waiting up to "
                f"{max_wait:.0f} s for quiet",
                file=sys.stderr,
                flush=True,
            )
            announced = True
