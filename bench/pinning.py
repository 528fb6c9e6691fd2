"""CPU pinning: the server on one core, the load generator on another (so neither steals the other's core).

Optionally a scheduling priority too (``--nice -10``, needs root): pinning keeps our processes apart,
but not other work off their cores; a higher priority makes such work wait instead of our processes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

SERVER_CPU = 0
LOAD_CPU = 1


def _threads(pid: int) -> list[int]:
    """Every thread of ``pid``: affinity and niceness are per thread on Linux."""
    try:
        return [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return [pid]


@dataclass(frozen=True)
class Pinning:
    enabled: bool
    nice: int = 0
    server_cpu: int = SERVER_CPU
    load_cpu: int = LOAD_CPU

    @classmethod
    def choose(cls, wanted: bool, nice: int = 0) -> Pinning:
        if not wanted:
            return cls(enabled=False, nice=nice)
        available = sorted(os.sched_getaffinity(0))
        if SERVER_CPU not in available or LOAD_CPU not in available:
            print(f"bench: CPUs {available} do not include 0 and 1; running unpinned", file=sys.stderr)
            return cls(enabled=False, nice=nice)
        return cls(enabled=True, nice=nice)

    def pin_self(self) -> None:
        """Place this process (the load generator); children inherit it until they are placed themselves."""
        if self.enabled:
            os.sched_setaffinity(0, {self.load_cpu})
        self._renice(os.getpid(), own_session=True)

    def pin_server(self, pid: int) -> None:
        """Place a server we started in a session of its own."""
        if self.enabled:
            for tid in _threads(pid):
                with contextlib.suppress(OSError):  # a thread that just ended
                    os.sched_setaffinity(tid, {self.server_cpu})
        self._renice(pid, own_session=True)

    def renice(self, pids: list[int]) -> None:
        """Give other processes of the system under test (PostgreSQL backends) our priority."""
        for pid in pids:
            self._renice(pid, own_session=False)

    def _renice(self, pid: int, *, own_session: bool) -> None:
        if self.nice == 0:
            return
        if own_session:
            # With autogroup scheduling, niceness only ranks threads within their session's group; the
            # group's own niceness ranks it against other sessions (such as other people's test runs).
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/autogroup").write_text(str(self.nice))
        for tid in _threads(pid):
            try:
                os.setpriority(os.PRIO_PROCESS, tid, self.nice)
            except OSError as exc:
                print(f"bench: cannot set priority {self.nice} on {tid}: {exc}", file=sys.stderr)
                return

    def describe(self) -> str:
        where = (
            f"server on CPU {self.server_cpu}, load generator on CPU {self.load_cpu}"
            if self.enabled
            else "unpinned"
        )
        return where + (f", nice {self.nice}" if self.nice else "")
