"""A real HTTP/1.1 webhook receiver on 127.0.0.1 (asyncio streams, keep-alive), in the tests' event loop:
it records every request and answers what the test says (a status, or a request held open until
released); it can be down (its port closed) and come back on the same port."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.notify.conftest import free_port


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int = 0  # what it was answered (0: never answered: the connection went first)

    @property
    def event(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.body)
        return data


@dataclass
class Receiver:
    """``answer(request) -> status`` decides each answer (default 200); ``hold(request)`` keeps a request
    open until ``release`` is set, then closes its connection without an answer; ``body`` is the
    answer's body (with ``location`` for redirects)."""

    answer: Callable[[Received], int] = lambda _: 200
    hold: Callable[[Received], bool] = lambda _: False
    body: bytes = b'{"ok": true}'
    location: str | None = None
    ssl_context: ssl.SSLContext | None = None
    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    held: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.ssl_context)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def answered(self, path: str | None = None) -> list[Received]:
        """Requests answered 2xx, in the order they were answered."""
        return [r for r in self.requests if 200 <= r.status < 300 and (path is None or r.path == path)]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(method, path, headers, body)
                self.requests.append(request)
                self.arrived.set()
                if self.hold(request):
                    # Held open until released, then dropped unanswered: as if its client had died.
                    self.held.set()
                    await self.release.wait()
                    return
                status = self.answer(request)
                extra = f"location: {self.location}\r\n" if self.location and 300 <= status < 400 else ""
                body = b"" if status in (204, 304) else self.body  # they have none (RFC 9110 §15.3.5)
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: "
                    f"{len(body)}\r\n{extra}\r\n".encode()
                    + body
                )
                await writer.drain()
                request.status = status
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


def tls_pair(tmp_dir: Any, name: str = "localhost") -> tuple[ssl.SSLContext, ssl.SSLContext, list[str]]:
    """A self-signed certificate for ``name``: the server's context, a client context that trusts only
    it (and checks the name), and the server names (SNI) clients asked the server for."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_dir / "cert.pem"
    key_path = tmp_dir / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    names: list[str] = []

    def note(_socket: Any, server_name: str | None, _context: Any) -> None:
        names.append(server_name or "")

    server.sni_callback = note
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client, names
