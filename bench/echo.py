"""A trivial HTTP/1.1 keep-alive server (``python -m bench.echo PORT``): the load generator's ceiling.

It answers every request with the same small JSON body and does nothing else, so the rate the load
generator reaches against it is the most the generator can measure on its core.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import cast

from bench.pinning import Pinning
from bench.server import free_port, stop_process, wait_http
from bench.target import Target

BODY = b'{"status":"ok"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class EchoProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        # The generator sends GETs without bodies: one response per blank line ending a header block.
        self.buffer += data
        requests = self.buffer.count(b"\r\n\r\n")
        if requests and self.transport is not None:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * requests)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoProtocol, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


class EchoServer:
    """Context manager: this module as a subprocess on the server's core."""

    def __init__(self, pinning: Pinning) -> None:
        self.pinning = pinning
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Target:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.echo", str(self.port)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{self.port}/"
        try:
            self.pinning.pin_server(self.proc.pid)
            wait_http(url, self.proc, Path("/dev/null"), timeout=30)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return Target(label="ceiling", base_url=url, token="-", trivial_url=url, pid=self.proc.pid)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


def main() -> None:
    port = int(sys.argv[1])
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(port))
    else:
        uvloop.run(serve(port))


if __name__ == "__main__":
    main()
