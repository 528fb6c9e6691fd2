"""Bounded HTTP/1.1 requests: uvicorn's httptools protocol with limits on the request head and timeouts.

Plain uvicorn reads a request head of any size and waits for a slow client forever: one client sending a
50 MB header costs seconds of event-loop time (the parser grows the header by concatenation) and hundreds
of megabytes, and a client trickling its head a byte at a time, or never finishing its body, holds a
connection indefinitely. ``BoundedHttpToolsProtocol`` counts the head's raw bytes as they arrive and
answers, then closes the connection:

- 431 when the head (request line and header fields) is over ``http_max_header_bytes``, refused as soon
  as that many bytes arrived without the head ending, or has more than ``http_max_headers`` fields;
- 414 when the request target (the URL) is over ``http_max_url_bytes``;
- 408 when the head is not complete ``http_header_timeout_seconds`` after the connection opened or the
  request began, or when no body byte arrived for ``http_body_timeout_seconds`` while the body is owed
  (the app's ``receive`` then returns ``http.disconnect``; once its response has begun, the connection is
  just closed).

The per-request cost is a few attribute reads and integer additions; timers are armed only for a new
connection and for a head or body that does not arrive in one read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from provisio.config import Settings, get_settings

# After answering a refused request, how long to go on reading (and dropping) what the client still
# sends: closing a socket with unread data resets the connection, and the client would lose the answer.
LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int
    max_headers: int
    max_url_bytes: int
    header_timeout: float
    body_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            max_header_bytes=settings.http_max_header_bytes,
            max_headers=settings.http_max_headers,
            max_url_bytes=settings.http_max_url_bytes,
            header_timeout=settings.http_header_timeout_seconds,
            body_timeout=settings.http_body_timeout_seconds,
        )


@lru_cache(maxsize=1)
def _limits() -> HttpLimits:
    return HttpLimits.from_settings(get_settings())


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that was already answered."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing oversized request heads and slow clients (module docstring).

    The head is counted in ``data_received`` because the parser hands over a header only once it ends: a
    single 50 MB header would be buffered whole before any callback could count it."""

    limits: HttpLimits
    _head_bytes = 0  # bytes received of a head that did not end in the read they came in
    _in_body = False  # a request's head is complete and its body is not
    _done = False  # answered with an error (or handed to a WebSocket): whatever else arrives is dropped
    _body_read_at = 0.0  # loop time of the last body bytes
    _deadline: asyncio.TimerHandle | None = None  # the head or body timeout, or the end of lingering

    # Connection and reading

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.limits = _limits()
        # Also bounds a connection that never sends anything (uvicorn times out only idle keep-alive).
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        in_body = self._in_body
        if in_body:
            self._body_read_at = self.loop.time()
        elif len(data) > self.limits.max_header_bytes - self._head_bytes:
            self._receive_past_limit(data)
            return
        cycle = self.cycle
        # uvicorn's data_received, except that a request refused inside a callback is not also a 400.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if not self._done:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        if self._done:
            return
        # The common request arrives in one read, its head and body both ending in it: nothing more to
        # do. Otherwise what is incomplete is timed, and an incomplete head counted.
        if self._in_body:
            if self._deadline is None:
                self._body_read_at = self.loop.time()
                self._arm(self.limits.body_timeout, self._body_timed_out)
        elif cycle is self.cycle and not in_body:
            self._head_bytes += len(data)  # no head ended: all of ``data`` is head (or blank lines)
            if self._deadline is None:
                self._arm(self.limits.header_timeout, self._head_timed_out)
        elif in_body and self._deadline is None:
            # A body ended, and a pipelined head may have begun after it: timed, but left uncounted for
            # this read (at most one read, which asyncio and uvloop cap at 256 KiB).
            self._arm(self.limits.header_timeout, self._head_timed_out)

    def _receive_past_limit(self, data: bytes) -> None:
        """Parse ``data``, longer than the head in progress may still grow, one head's room at a time: a
        head still incomplete at its limit is refused before the rest is even looked at."""
        limit = self.limits.max_header_bytes
        while data and not self._done:
            room = limit - self._head_bytes
            if self._in_body or len(data) <= room:
                self.data_received(data)
                return
            self.data_received(data[:room])
            if self._done or self.transport.is_closing():
                return  # answered, or a 400
            if self._head_bytes >= limit:
                if len(getattr(self, "url", b"")) > self.limits.max_url_bytes:
                    self._refuse_head(414, self._url_detail())
                else:
                    self._refuse_head(431, f"The request header fields are over {limit} bytes.")
                return
            data = data[room:]

    def handle_websocket_upgrade(self) -> None:
        self._done = True
        self._disarm()
        super().handle_websocket_upgrade()

    # Parser callbacks

    def on_headers_complete(self) -> None:
        limits = self.limits
        if len(self.url) > limits.max_url_bytes:
            self._refuse_head(414, self._url_detail())
            raise _Refused
        if len(self.headers) > limits.max_headers:
            self._refuse_head(431, f"The request has more than {limits.max_headers} header fields.")
            raise _Refused
        self._in_body = True
        self._head_bytes = 0
        if self._deadline is not None:
            self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._deadline is not None:
            self._disarm()
        super().on_message_complete()

    # Timeouts and refusals

    def _head_timed_out(self) -> None:
        self._deadline = None
        if self._done or self.transport.is_closing():
            return
        cycle = self.cycle
        if self._head_bytes:
            seconds = f"{self.limits.header_timeout:g} s"
            self._refuse_head(408, f"The request header fields did not arrive within {seconds}.")
        elif cycle is None or cycle.response_complete:
            self.transport.close()  # no request began: nothing to answer
        # Otherwise a response is still being made; uvicorn's keep-alive timeout follows it.

    def _body_timed_out(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if self._done or not self._in_body or cycle is None or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused or cycle.waiting_for_100_continue:
            # The app has not asked for more yet: the client is waiting for it, not stalling.
            self._body_read_at = now
        idle = now - self._body_read_at
        if idle < self.limits.body_timeout:
            self._arm(self.limits.body_timeout - idle, self._body_timed_out)
            return
        if cycle.response_started:
            self.transport.close()  # too late for a status; the app's receive sees the disconnect
            return
        # The app's receive returns http.disconnect and what it sends is dropped: the 408 is the answer.
        cycle.disconnected = True
        cycle.message_event.set()
        seconds = f"{self.limits.body_timeout:g} s"
        self._answer(408, f"The request body stopped arriving for {seconds}.")

    def _refuse_head(self, status: int, detail: str) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined request went wrong while the one before is still being answered: finish that
            # answer, then close.
            self._done = True
            self._disarm()
            cycle.keep_alive = False
            return
        self._answer(status, detail)

    def _answer(self, status: int, detail: str) -> None:
        """Send ``status`` with ``detail`` and close, after lingering (see ``LINGER_SECONDS``)."""
        self._done = True
        self._disarm()
        self.logger.warning("Refused an HTTP request with %d: %s", status, detail)
        body = detail.encode()
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self._deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._deadline = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _url_detail(self) -> str:
        return f"The request URL is over {self.limits.max_url_bytes} bytes."
