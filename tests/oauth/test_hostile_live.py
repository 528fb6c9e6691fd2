"""Hostile OAuth requests over real HTTP, one kept-alive connection: each gets its protocol error and the
connection carries on (an unhandled error would answer 500 and close it)."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Iterator

import pytest

from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from tests.live_server import LiveServer, live_server
from tests.oauth.helpers import OAuthTenant, make_oauth_tenant


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, OAuthTenant]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'provisio.db'}"
    upgrade(url)

    async def seed() -> OAuthTenant:
        db = Database.from_url(url)
        try:
            return await make_oauth_tenant(db)
        finally:
            await db.dispose()

    tenant = asyncio.run(seed())
    with live_server(url) as live:
        yield live, tenant


def _exchange(conn: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    conn.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, "the server closed the connection"
        body += chunk
    return int(status_line.split()[1]), headers, body


def _post(path: str, body: bytes, authorization: bytes) -> bytes:
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Authorization: " + authorization + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def test_hostile_requests_keep_the_connection(server: tuple[LiveServer, OAuthTenant]) -> None:
    live, tenant = server
    host, port = live.url.removeprefix("http://").split(":")
    authorize = f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}"
    requests = [
        # Unregistered redirect URI and response type holding characters Authlib will not describe.
        (
            f"GET {authorize}&redirect_uri=https://evil.example/%22%5C HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
            400,
        ),
        (f"GET {authorize.replace('=code', '=%22')} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 302),
        (
            _post(
                "/oauth/token", b"grant_type=client_credentials", b"Basic " + base64.b64encode(b"\xff:\xfe")
            ),
            401,
        ),
        (_post("/oauth/token", b"grant_type=client_credentials", b"Basic \xe9\xe9"), 401),
        (_post("/oauth/revoke", b"token=x", b"Basic " + base64.b64encode(b"no-colon")), 401),
        (_post("/oauth/token", b"grant_type=%FF", b"Basic x"), 400),
    ]
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        for request, status in requests:
            got, headers, _ = _exchange(conn, request)
            assert got == status, (request, got)
            assert headers.get("connection", "").lower() != "close", request
        got, _, body = _exchange(conn, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert got == 200 and b"ok" in body
    # A raw non-ASCII byte in the request line: uvicorn itself refuses it (400, and closes).
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        raw = f"GET {authorize}&state=".encode() + b"\xff HTTP/1.1\r\nHost: x\r\n\r\n"
        assert _exchange(conn, raw)[0] == 400
