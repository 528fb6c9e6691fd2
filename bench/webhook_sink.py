"""A tiny webhook receiver (``python -m bench.webhook_sink PORT``) for ``--webhook``: answers every POST
``204`` at once and counts them; ``GET /count`` says how many it has had.

It stands for the host application's endpoint, so that the benchmark measures what a subscribed
endpoint costs provisio (the fan-out, the outbox rows, the signed deliveries), not a slow receiver.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import TracebackType

from bench.server import free_port, stop_process, wait_http

NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


class Sink:
    def __init__(self) -> None:
        self.deliveries = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET /count"):
                    body = json.dumps({"deliveries": self.deliveries}).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                        + str(len(body)).encode()
                        + b"\r\n\r\n"
                        + body
                    )
                else:
                    self.deliveries += 1
                    writer.write(NO_CONTENT)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def serve(port: int) -> None:
    sink = Sink()
    server = await asyncio.start_server(sink.handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


class WebhookSink:
    """Context manager: this module as a subprocess; ``url`` to register, ``count()`` afterwards."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhooks"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> WebhookSink:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.webhook_sink", str(self.port)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{self.port}/count", self.proc, Path("/dev/null"), timeout=30)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def count(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/count", timeout=5) as response:
            return int(json.load(response)["deliveries"])

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
