"""The reference server: ``../shared/conformance/start-peer.sh`` (scim2-server, everything in memory)."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from bench.pinning import Pinning
from bench.server import free_port, stop_process, wait_http
from bench.target import Target

# /work/main/bench/peer.py -> /work/shared/conformance/start-peer.sh
DEFAULT_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "start-peer.sh"


class PeerServer:
    """Context manager: start-peer.sh on a free port in its own process group, pinned like provisio."""

    def __init__(self, pinning: Pinning, script: Path = DEFAULT_SCRIPT) -> None:
        if not script.exists():
            raise RuntimeError(f"reference server script not found: {script}")
        self.script = script
        self.pinning = pinning
        self.port = free_port()
        self.token = secrets.token_urlsafe(16)
        self.workdir = Path(tempfile.mkdtemp(prefix="provisio-bench-peer-"))
        self.log = self.workdir / "peer.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Target:
        base = f"http://127.0.0.1:{self.port}/v2"
        with self.log.open("wb") as log:
            # start-peer.sh installs scim2-server into a venv on first use, then execs it (same pid).
            self.proc = subprocess.Popen(
                ["bash", str(self.script), str(self.port), self.token],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(os.environ),
            )
        try:
            self.pinning.pin_server(self.proc.pid)
            wait_http(
                f"{base}/ServiceProviderConfig",
                self.proc,
                self.log,
                timeout=300,
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return Target(
            label="peer",
            base_url=base,
            token=self.token,
            trivial_url=f"{base}/ServiceProviderConfig",
            pid=self.proc.pid,
        )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
