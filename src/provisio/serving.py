"""``provisio serve``: uvicorn with provisio's HTTP protocol, quiet but for one line saying where it
listens, printed once the socket is bound (and, with one worker, once the application has started: the
database reachable and migrated), so that the line means the server answers."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.server import STARTUP_FAILURE

from provisio.http_limits import BoundedHttpToolsProtocol


def listening_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, announce: Callable[[str], Any]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers:
            port = self.servers[0].sockets[0].getsockname()[1]  # the real one when asked for port 0
            self._announce(f"provisio listening on {listening_url(self.config.host, port)}")


def run_server(*, host: str, port: int, workers: int, announce: Callable[[str], Any]) -> None:
    config = uvicorn.Config(
        "provisio.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=BoundedHttpToolsProtocol,  # request head limits and read timeouts (PROVISIO_HTTP_*)
        log_level="warning",  # problems only: uvicorn's start-up lines give way to the one line above
        access_log=False,
    )
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        sock = config.bind_socket()  # bound here, shared by the worker processes
        announce(f"provisio listening on {listening_url(host, sock.getsockname()[1])}")
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=[sock]).run()
        return
    server = _AnnouncingServer(config, announce)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        # What uvicorn.run does: a server that could not start (port taken, database not migrated)
        # exits non-zero, after uvicorn logged why.
        sys.exit(STARTUP_FAILURE)
