"""Start provisio the way ``make run`` does, on a fresh database, and stop it afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy.engine import make_url

from bench.pinning import Pinning
from bench.target import Target
from bench.users import DOMAIN

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(
    url: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> None:
    """Poll ``url`` until it answers 200; fail early with the log's tail when the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering:\n{tail(log)}")
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (uvicorn's graceful stop), then SIGTERM, then SIGKILL, to the process group we created."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def provisio_executable() -> str:
    """``.venv/bin/provisio``: the console script beside the interpreter running the benchmark."""
    candidate = Path(sys.executable).parent / "provisio"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("provisio")
    if found is None:
        raise RuntimeError(
            "provisio is not installed in this environment: run `make bench` or pip install -e ."
        )
    return found


async def _pg_admin(admin_url: str, statement: str) -> None:
    import asyncpg  # a provisio dependency

    url = make_url(admin_url)
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database or "postgres",
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


class ProvisioServer:
    """Context manager: fresh database, migrate, workspace, token, ``provisio serve``; all undone on exit."""

    def __init__(
        self,
        backend: str,
        pinning: Pinning,
        *,
        pg_admin_url: str = DEFAULT_PG_URL,
        seats: int = 0,
        profile: Path | None = None,
        rate_limit: tuple[float, int] | None = None,
        webhook_url: str | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        self.backend = backend
        self.pinning = pinning
        self.pg_admin_url = pg_admin_url
        self.seats = seats
        self.profile = profile  # run the server under cProfile, writing its stats here on exit
        self.rate_limit = rate_limit  # (per second, burst) per workspace; None: off
        # A deployment-wide webhook endpoint registered once the server runs (its worker delivers
        # to it, inside `provisio serve` as in production); None: no endpoint.
        self.webhook_url = webhook_url
        self.exe = provisio_executable()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"provisio-bench-{backend}-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.pg_database: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "server.log"

    def _database_url(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir / 'provisio.db'}"
        self.pg_database = f"provisio_bench_{secrets.token_hex(6)}"
        asyncio.run(_pg_admin(self.pg_admin_url, f'CREATE DATABASE "{self.pg_database}"'))
        return (
            make_url(self.pg_admin_url).set(database=self.pg_database).render_as_string(hide_password=False)
        )

    def _env(self, database_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PROVISIO_DATABASE_URL=database_url,
            PROVISIO_BASE_URL=self.base,
            PROVISIO_SECRET_KEY=secrets.token_urlsafe(32),
            PROVISIO_LOG_LEVEL="WARNING",
        )
        if self.webhook_url is not None:
            env["PROVISIO_WEBHOOK_ALLOW_PRIVATE_URLS"] = "true"  # the sink listens on 127.0.0.1
        per_second, burst = self.rate_limit or (0.0, 1)
        env.update(
            PROVISIO_SCIM_RATE_LIMIT_PER_SECOND=f"{per_second:g}", PROVISIO_SCIM_RATE_LIMIT_BURST=str(burst)
        )
        return env

    def _cli(self, env: dict[str, str], *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [self.exe, *args], env=env, cwd=self.workdir, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"provisio {' '.join(args)} failed ({done.returncode}):\n{done.stderr}{done.stdout}"
            )
        try:
            data: dict[str, Any] = json.loads(done.stdout)
        except json.JSONDecodeError as exc:
            raise RuntimeError(f"provisio {' '.join(args)} printed no JSON:\n{done.stdout}") from exc
        return data

    def _profiler(self) -> list[str]:
        if self.profile is None:
            return []
        self.profile.parent.mkdir(parents=True, exist_ok=True)
        return [sys.executable, "-m", "cProfile", "-o", str(self.profile)]

    def __enter__(self) -> Target:
        try:
            return self._start()
        except BaseException:
            self._cleanup()
            raise

    def _start(self) -> Target:
        env = self._env(self._database_url())
        self._cli(env, "db", "upgrade", "--json")
        workspace = self._cli(env, "workspace", "create", "Bench", "--seats", str(self.seats), "--json")
        key = str(workspace["key"])
        # Members need an e-mail in a verified domain of their workspace: the operator's override.
        self._cli(env, "domain", "add", key, DOMAIN, "--verified", "--json")
        token = self._cli(env, "scim", "configure", key, "--method", "bearer", "--json")  # SCIM on
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [*self._profiler(), self.exe, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pinning.pin_server(self.proc.pid)
        wait_http(f"{self.base}/healthz", self.proc, self.log)
        if self.webhook_url is not None:
            self._register_webhook(env)
        return Target(
            label=self.backend,
            base_url=str(token["tenant_url"]),
            token=str(token["token"]),
            trivial_url=f"{self.base}/healthz",
            pid=self.proc.pid,
            database_url=env["PROVISIO_DATABASE_URL"],
            database_marker=self.pg_database,
        )

    def _register_webhook(self, env: dict[str, str]) -> None:
        key = self._cli(env, "apikey", "create", "bench", "--json")["key"]
        request = urllib.request.Request(
            f"{self.base}/api/v1/webhook-endpoints",
            data=json.dumps({"url": self.webhook_url, "description": "bench"}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 201:
                raise RuntimeError(f"registering the webhook endpoint answered {response.status}")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        if self.pg_database is not None:
            try:
                asyncio.run(
                    _pg_admin(self.pg_admin_url, f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')
                )
            except Exception as exc:  # keep the results; say what is left behind
                print(f"bench: could not drop database {self.pg_database}: {exc}", file=sys.stderr)
            self.pg_database = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def server_log_tail(self) -> str:
        return tail(self.log)
