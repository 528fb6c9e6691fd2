"""A real provisio server on 127.0.0.1 (uvicorn in a subprocess), for tests that need a socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]

    def tenant_url(self, key: str) -> str:
        return f"{self.url}/scim/v2/{key}"


@contextmanager
def live_server(
    database_url: str,
    *,
    startup_timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
) -> Iterator[LiveServer]:
    """Serve an already-migrated database until the block ends (``env``: more settings, PROVISIO_*)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = os.environ | {
        "PROVISIO_DATABASE_URL": database_url,
        "PROVISIO_BASE_URL": url,
        "PROVISIO_SECRET_KEY": "live-test-secret",
        "PROVISIO_LOG_LEVEL": "WARNING",
        # The limiter runs but out of the way, as in tests/conftest.py; rate-limit tests pass their own.
        "PROVISIO_SCIM_RATE_LIMIT_PER_SECOND": "100000",
        "PROVISIO_SCIM_RATE_LIMIT_BURST": "100000",
        **(env or {}),
    }
    command = [sys.executable, "-m", "provisio.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen([*command, "--workers", str(workers)], env=environment)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"provisio exited with {process.returncode} before serving")
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("provisio did not start in time")
            time.sleep(0.1)
        yield LiveServer(url=url, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
