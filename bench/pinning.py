"""CPU pinning: the server on one core, the load generator on another (issue 3 asks for it)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

SERVER_CPU = 0
LOAD_CPU = 1


@dataclass(frozen=True)
class Pinning:
    enabled: bool
    server_cpu: int = SERVER_CPU
    load_cpu: int = LOAD_CPU

    @classmethod
    def choose(cls, wanted: bool) -> Pinning:
        if not wanted:
            return cls(enabled=False)
        available = sorted(os.sched_getaffinity(0))
        if SERVER_CPU not in available or LOAD_CPU not in available:
            print(f"bench: CPUs {available} do not include 0 and 1; running unpinned", file=sys.stderr)
            return cls(enabled=False)
        return cls(enabled=True)

    def pin_self(self) -> None:
        """Pin this process (the load generator); children inherit it until they are re-pinned."""
        if self.enabled:
            os.sched_setaffinity(0, {self.load_cpu})

    def pin_server(self, pid: int) -> None:
        if self.enabled:
            os.sched_setaffinity(pid, {self.server_cpu})

    def describe(self) -> str:
        if not self.enabled:
            return "unpinned"
        return f"server on CPU {self.server_cpu}, load generator on CPU {self.load_cpu}"
