"""Bounded requests against a real ``provisio serve`` (uvicorn with provisio.http_limits) over raw sockets:
oversized heads get 431/414 while they arrive, slow heads and stalled bodies 408, and meanwhile the server
keeps answering other clients. Timeouts are shortened to keep the tests quick; every socket operation has
a deadline, so no test can hang.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest

from provisio.db.engine import Database
from tests.conftest import make_tenant
from tests.domain.helpers import okta_user
from tests.live_server import LiveServer, live_server

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MAX_HEADER_BYTES = 65_536  # the defaults
MAX_HEADERS = 100
MAX_URL_BYTES = 8192
LIMITS = {
    "PROVISIO_HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
    "PROVISIO_HTTP_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
}


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[LiveServer]:
    with live_server(database_url, env=LIMITS) as live:
        yield live


@dataclass
class Answer:
    status: int
    body: bytes
    closed: bool  # the server closed the connection after it


def _connect(server: LiveServer) -> socket.socket:
    address = urlsplit(server.url)
    sock = socket.create_connection((address.hostname, address.port), timeout=5)
    sock.settimeout(5)
    return sock


def _read_answer(sock: socket.socket, timeout: float = 5.0) -> Answer:
    return _read_answers(sock, 1, timeout)[0]


def _read_answers(sock: socket.socket, count: int, timeout: float = 5.0) -> list[Answer]:
    """``count`` responses (status line, headers, content-length body), and whether the connection
    closed after the last."""
    deadline = time.monotonic() + timeout
    answers: list[Answer] = []
    data = b""
    while len(answers) < count:
        while b"\r\n\r\n" not in data:
            chunk = _recv(sock, deadline)
            if not chunk:
                raise AssertionError(f"connection closed without a full response: {data[:200]!r}")
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(headers.get("content-length", "0"))
        while len(data) < length:
            chunk = _recv(sock, deadline)
            assert chunk, "connection closed inside the response body"
            data += chunk
        body, data = data[:length], data[length:]
        closed = headers.get("connection") == "close" and _closes(sock, deadline - time.monotonic())
        answers.append(Answer(int(lines[0].split()[1]), body, closed))
    return answers


def _recv(sock: socket.socket, deadline: float) -> bytes:
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return sock.recv(65_536)
    except ConnectionResetError:
        return b""


def _closes(sock: socket.socket, within: float) -> bool:
    """The server closes the connection within ``within`` seconds (whatever else it sends is dropped)."""
    deadline = time.monotonic() + max(within, 0.01)
    try:
        while time.monotonic() < deadline:
            if not _recv(sock, deadline):
                return True
    except TimeoutError:
        return False
    return False


def _ask(server: LiveServer, request: bytes) -> Answer:
    with _connect(server) as sock:
        sock.sendall(request)
        return _read_answer(sock)


def _get(target: str = "/healthz", headers: bytes = b"") -> bytes:
    return b"GET " + target.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n"


def _send_until_answered(sock: socket.socket, total: int, timeout: float = 20.0) -> int:
    """Send ``total`` filler bytes (a header value), stopping as soon as the server answers; the bytes
    sent by then."""
    block = b"a" * 65_536
    sent = 0
    sock.setblocking(False)
    deadline = time.monotonic() + timeout
    try:
        while sent < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 0.5)
            if readable:
                break
            if writable:
                with contextlib.suppress(BlockingIOError):
                    sent += sock.send(block[: total - sent])
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.setblocking(True)
    return sent


@dataclass
class Bystander:
    """Another client sending GET /healthz on its own keep-alive connection, timing each answer."""

    server: LiveServer
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=10) as http:
            while not self.stop.is_set():
                start = time.monotonic()
                try:
                    status = http.get("/healthz").status_code
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.latencies.append(time.monotonic() - start)
                if status != 200:
                    self.failures.append(str(status))
                time.sleep(0.02)

    def __enter__(self) -> Bystander:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the bystander is stuck"


def _peak_memory_kib(server: LiveServer) -> int:
    with open(f"/proc/{server.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.parametrize("size", [1_000_000, 50_000_000], ids=["1MB", "50MB"])
def test_an_oversized_header_is_refused_while_it_arrives(server: LiveServer, size: int) -> None:
    peak_before = _peak_memory_kib(server)
    with Bystander(server) as bystander, _connect(server) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: ")
        sent = _send_until_answered(sock, size)
        answer = _read_answer(sock)
        answered_after = time.monotonic() - start
        time.sleep(0.3)  # the bystander keeps asking while the server drops the rest
    assert answer.status == 431
    assert answer.body == f"The request header fields are over {MAX_HEADER_BYTES} bytes.".encode()
    assert answer.closed
    # Answered once the limit was crossed, not after the whole header: what was sent by then is the
    # limit plus what the socket buffers held.
    assert answered_after < 2.0
    assert size < 10_000_000 or sent < size // 2
    grown_mib = (_peak_memory_kib(server) - peak_before) / 1024
    assert grown_mib < 16, f"the server's peak memory grew by {grown_mib:.0f} MiB"
    assert not bystander.failures
    assert bystander.latencies and max(bystander.latencies) < 0.5, max(bystander.latencies)


@pytest.mark.parametrize("chunk", [None, 1000], ids=["one-write", "1000-byte-writes"])
def test_the_header_limit_counts_the_whole_head_exactly(server: LiveServer, chunk: int | None) -> None:
    def head(total: int) -> bytes:
        start = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Filler: "
        return start + b"a" * (total - len(start) - 4) + b"\r\n\r\n"

    for total, status in [(MAX_HEADER_BYTES, 200), (MAX_HEADER_BYTES + 1, 431)]:
        request = head(total)
        assert len(request) == total
        with _connect(server) as sock:
            for i in range(0, total, chunk or total):
                sock.sendall(request[i : i + (chunk or total)])
            assert _read_answer(sock).status == status, total


def test_heads_on_a_keep_alive_connection_are_counted_one_by_one(server: LiveServer) -> None:
    big = b"X-Filler: " + b"a" * 40_000 + b"\r\n"  # 2 of them in one head would be over the limit
    with _connect(server) as sock:
        for _ in range(4):
            request = _get(headers=big)
            sock.sendall(request[:20_000])  # in two reads, so that the server counts the first
            time.sleep(0.05)
            sock.sendall(request[20_000:])
            answer = _read_answer(sock)
            assert (answer.status, answer.closed) == (200, False)
        sock.sendall(_get(headers=big) * 3)  # pipelined
        assert [answer.status for answer in _read_answers(sock, 3)] == [200, 200, 200]


def test_too_many_header_fields_get_431(server: LiveServer) -> None:
    def fields(n: int) -> bytes:  # Host, Connection and n - 2 more
        return b"Connection: close\r\n" + b"".join(b"X-Field-%d: v\r\n" % i for i in range(n - 2))

    assert _ask(server, _get(headers=fields(MAX_HEADERS))).status == 200
    answer = _ask(server, _get(headers=fields(MAX_HEADERS + 1)))
    assert (answer.status, answer.closed) == (431, True)
    assert answer.body == b"The request has more than 100 header fields."


@pytest.mark.parametrize("length", [MAX_URL_BYTES + 1, 2_000_000], ids=["just-over", "2MB"])
def test_a_long_url_gets_414(server: LiveServer, length: int) -> None:
    target = "/healthz?q=" + "a" * (length - len("/healthz?q="))
    answer = _ask(server, _get(target))
    assert (answer.status, answer.closed) == (414, True)
    assert answer.body == b"The request URL is over 8192 bytes."
    at_limit = "/healthz?q=" + "a" * (MAX_URL_BYTES - len("/healthz?q="))
    assert _ask(server, _get(at_limit, b"Connection: close\r\n")).status == 200


def test_a_head_trickled_byte_by_byte_gets_408(server: LiveServer) -> None:
    request = _get(headers=b"X-Slow: " + b"s" * 200 + b"\r\n")
    with Bystander(server) as bystander, _connect(server) as sock:
        start = time.monotonic()
        for byte in request:
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                break
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = _read_answer(sock)
        elapsed = time.monotonic() - start
    assert (answer.status, answer.closed) == (408, True)
    assert answer.body == b"The request header fields did not arrive within 1 s."
    assert HEADER_TIMEOUT - 0.1 < elapsed < HEADER_TIMEOUT + 1.5
    assert not bystander.failures and max(bystander.latencies) < 0.5


def test_a_connection_that_sends_nothing_is_closed(server: LiveServer) -> None:
    with _connect(server) as sock:
        start = time.monotonic()
        assert _recv(sock, start + HEADER_TIMEOUT + 2) == b""
        assert HEADER_TIMEOUT - 0.1 < time.monotonic() - start < HEADER_TIMEOUT + 1.5


def _metric_lines(server: LiveServer, status: str) -> list[str]:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return [ln for ln in text.splitlines() if ln.startswith("provisio_http_requests_total") and status in ln]


@pytest.mark.parametrize(
    ("path", "content_type", "start"),
    [
        ("/scim/v2/{key}/Users", "application/scim+json", b'{"userName": "'),
        ("/oauth/token", "application/x-www-form-urlencoded", b"grant_type=client_cre"),
        ("/console/login", "application/x-www-form-urlencoded", b"email=ada%40"),
    ],
    ids=["scim", "oauth-form", "console-form"],
)
async def test_a_stalled_body_gets_408_and_the_app_does_not_fail(
    server: LiveServer, db: Database, path: str, content_type: str, start: bytes
) -> None:
    tenant = await make_tenant(db)
    request = (
        f"POST {path.format(key=tenant.key)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Authorization: Bearer {tenant.token}\r\nContent-Length: 500\r\n\r\n"
    ).encode() + start
    with Bystander(server) as bystander, _connect(server) as sock:
        began = time.monotonic()
        sock.sendall(request)
        answer = _read_answer(sock, timeout=BODY_TIMEOUT + 5)
        elapsed = time.monotonic() - began
    assert (answer.status, answer.closed) == (408, True)
    assert answer.body == b"The request body stopped arriving for 1 s."
    assert BODY_TIMEOUT - 0.1 < elapsed < BODY_TIMEOUT + 1.5
    assert not bystander.failures and max(bystander.latencies) < 0.5
    # The app saw its receive end (http.disconnect) and answered it as the client's doing, not a 500.
    assert _metric_lines(server, 'status="500"') == []
    assert any('method="POST"' in line for line in _metric_lines(server, 'status="408"'))


async def test_a_body_that_arrives_slowly_but_steadily_is_accepted(server: LiveServer, db: Database) -> None:
    tenant = await make_tenant(db)
    body = httpx.Request("POST", "/", json=okta_user(f"slow@{tenant.key}.test")).content
    head = (
        f"POST /scim/v2/{tenant.key}/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/scim+json\r\nAuthorization: Bearer {tenant.token}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    assert _send_in_thirds(server, head, body, pause=0.6 * BODY_TIMEOUT).status == 201


def _send_in_thirds(server: LiveServer, head: bytes, body: bytes, pause: float) -> Answer:
    """Send the body in three parts, each after ``pause``: longer in all than the body timeout."""
    with _connect(server) as sock:
        sock.sendall(head)
        third = len(body) // 3 + 1
        for i in range(0, len(body), third):
            time.sleep(pause)
            sock.sendall(body[i : i + third])
        return _read_answer(sock)


IDP_HEADERS = (
    # What Okta and Entra ID send, with a realistic (long) bearer token and tracing headers.
    "Accept: application/scim+json\r\n"
    "Accept-Encoding: gzip, deflate\r\n"
    "Accept-Charset: utf-8\r\n"
    "Content-Type: application/scim+json; charset=utf-8\r\n"
    "User-Agent: Okta SCIM Client 1.0.0\r\n"
    "X-Okta-Request-Id: Zk3fQm1nQ2o5bWx1bGx1bGx1bGx1bA\r\n"
    "Client-Request-Id: 6f1e4c3a-0b7d-4a8e-9f1c-2d3e4f5a6b7c\r\n"
    "X-MS-Client-Request-Id: 6f1e4c3a-0b7d-4a8e-9f1c-2d3e4f5a6b7c\r\n"
    "Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
    "Tracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\r\n"
    "X-Forwarded-For: 203.0.113.7, 198.51.100.20\r\n"
    "X-Forwarded-Proto: https\r\n"
    "X-Forwarded-Host: provisio.example.com\r\n"
    "Forwarded: for=203.0.113.7;proto=https\r\n"
    "Via: 1.1 azure-frontdoor\r\n"
    "Cache-Control: no-cache\r\n"
    "Pragma: no-cache\r\n"
    "X-Request-Start: t=1733342400000\r\n"
    f"X-Ms-Token-Aad-Id-Token: {'e' * 2400}\r\n"
    f"Cookie: ARRAffinity={'c' * 64}; ARRAffinitySameSite={'c' * 64}\r\n"
    "Connection: close\r\n"
)


async def test_a_normal_request_with_many_idp_headers_is_fine(server: LiveServer, db: Database) -> None:
    tenant = await make_tenant(db)
    headers = f"Authorization: Bearer {tenant.token}\r\n{IDP_HEADERS}".encode()
    answer = _ask(server, _get(f"/scim/v2/{tenant.key}/Users?filter=userName%20eq%20%22x%22", headers))
    assert answer.status == 200, answer.body


def test_serve_with_two_workers_applies_the_limits(database_url: str) -> None:
    with live_server(database_url, env=LIMITS, workers=2, startup_timeout=90) as live:
        assert _ask(live, _get(headers=b"Connection: close\r\n")).status == 200
        assert _ask(live, _get(headers=b"X-Filler: " + b"a" * 70_000 + b"\r\n")).status == 431
