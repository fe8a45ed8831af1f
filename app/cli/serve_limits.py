"""What the HTTP server itself enforces before the app sees a request: header size, header-read and body-read
time, idle time and the number of connections. A protocol wrapped around uvicorn's, not a subclass of it: it
watches the bytes both ways with httptools' parsers and drives uvicorn's protocol only through asyncio's Protocol
methods, so nothing here depends on how uvicorn's protocol works inside."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.platform.settings import ServerSettings, load_settings
from app.web.admission import CONNECTION_CLOSER

_RESPONSES = {
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    408: b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
}
_HEADER_LINE_OVERHEAD_BYTES = 4  # ": " and CRLF


class GuardedHttpProtocol(asyncio.Protocol):
    """uvicorn's HTTP protocol, plus:

    - a request's head (request line and headers) must arrive within ``header_read_timeout_s`` of the connection or
      of the request's first byte, and must not exceed ``max_header_bytes``; otherwise 408 or 431 and the
      connection is closed. A connection that never sends a byte is closed the same way.
    - a request's body must arrive within ``body_read_timeout_s`` of its head, answered or not; otherwise the
      connection is closed (with 408 if nothing was answered yet).
    - at ``max_connections``, a new connection closes the oldest one that has not sent a whole request head yet,
      else the oldest idle between requests (as nginx closes idle kept-alive connections when it runs short), so
      that connections which never send a request cannot keep out those that do. Past that, uvicorn answers 503.
    - the app can close the connection of the request it serves (``app.web.admission.CONNECTION_CLOSER``: ending
      a revoked credential's requests). uvicorn starts a request's task while it reads the bytes that complete its
      head, so the task's context holds the closer set around that read (unless uvicorn's ``reset_contextvars``,
      off by default and not set here, is on).
    """

    limits: ServerSettings | None = None  # read once per process: the class is named, not built, in uvicorn's config
    _limits: ServerSettings  # this connection's, from the above at connection_made
    # Oldest first (a dict keeps insertion order), one of each per process: connections that have not yet sent a
    # whole head, the first to close at capacity; then those idle between requests.
    _fresh: dict[GuardedHttpProtocol, None] = {}  # noqa: RUF012
    _idle: dict[GuardedHttpProtocol, None] = {}  # noqa: RUF012
    _open: set[GuardedHttpProtocol] = set()  # noqa: RUF012

    def __init__(self, **server_arguments: Any) -> None:
        # What uvicorn gives any protocol class it is named (config, server_state, app_state), passed on whole.
        self._http = HttpToolsProtocol(**server_arguments)
        self._server_state = server_arguments["server_state"]
        self._requests = httptools.HttpRequestParser(self)
        self._responses: httptools.HttpResponseParser | None = httptools.HttpResponseParser(_ResponseWatch(self))
        self._heads: deque[bool] = deque()  # per request answered or being answered: whether it was a HEAD
        self._head_bytes = 0  # bytes received while reading the current head (whole reads)
        self._head_size = 0  # the current head's size as parsed
        self._reading_head = True
        self._in_body = False
        self._answered = False  # the current request's response has begun
        self._requests_done = 0
        self._responses_done = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol, passed on to uvicorn's protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._loop = asyncio.get_running_loop()
        limits = GuardedHttpProtocol.limits
        if limits is None:
            limits = GuardedHttpProtocol.limits = load_settings().server
        self._limits = limits
        self._http.connection_made(cast(asyncio.Transport, _WatchedTransport(self._transport, self)))
        self._arm_head_timer()
        GuardedHttpProtocol._open.add(self)
        # uvicorn answers 503 to a request while max_connections are open, its own connection counted.
        if len(GuardedHttpProtocol._open) >= limits.max_connections:
            self._close_oldest_unused()
        GuardedHttpProtocol._fresh[self] = None

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport.is_closing():
            return
        reading_head = self._reading_head
        if reading_head:
            self._head_bytes += len(data)
        try:
            self._requests.feed_data(data)  # may complete the head (and start a body) in this very chunk
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            pass  # uvicorn's own parser answers 400 and closes
        if transport.is_closing():  # refused by a callback
            return
        limits = self._limits
        if reading_head and self._reading_head and self._head_bytes > limits.max_header_bytes:
            self._refuse(431)
            return
        token = CONNECTION_CLOSER.set(transport.abort)
        try:
            self._http.data_received(data)
        finally:
            CONNECTION_CLOSER.reset(token)
        if self._in_body and self._body_timer is None and not transport.is_closing():
            # Armed only when a body spans reads: most requests arrive whole in one, and cost no timer.
            self._body_timer = self._loop.call_later(limits.body_read_timeout_s, self._body_late)

    def eof_received(self) -> None:
        self._http.eof_received()

    def pause_writing(self) -> None:
        self._http.pause_writing()

    def resume_writing(self) -> None:
        self._http.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        GuardedHttpProtocol._open.discard(self)
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._http.connection_lost(exc)

    # --- the request side, from httptools' parser ------------------------------------------------------------

    def on_message_begin(self) -> None:
        GuardedHttpProtocol._idle.pop(self, None)
        if not self._reading_head:  # the next request on a kept-alive connection
            self._reading_head = True
            self._head_bytes = 0
            self._arm_head_timer()
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + _HEADER_LINE_OVERHEAD_BYTES

    def on_headers_complete(self) -> None:
        if self._transport.is_closing():
            return
        self._reading_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._head_size > self._limits.max_header_bytes:  # the head came whole in one read
            self._refuse(431)
            return
        self._forget()
        self._in_body = True
        self._answered = False
        self._heads.append(self._requests.get_method() == b"HEAD")

    def on_message_complete(self) -> None:
        self._in_body = False
        self._requests_done += 1
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._note_if_idle()

    # --- the response side, from what uvicorn's protocol writes ----------------------------------------------

    def watch_written(self, data: bytes) -> None:
        if self._responses is None:
            return
        try:
            self._responses.feed_data(data)
        except httptools.HttpParserError:
            self._responses = None  # not understood: never taken for idle, so never closed to make room

    def response_status(self) -> int:
        return self._responses.get_status_code() if self._responses is not None else 0

    def response_began(self, head_only: bool) -> None:
        """A final (not 1xx) response's head was written; ``head_only``: answering a HEAD, it has no body."""
        self._answered = True
        if head_only:  # its content-length describes a body never sent: a parser would wait for it
            self._responses = httptools.HttpResponseParser(_ResponseWatch(self))
            self.response_ended()

    def response_ended(self) -> None:
        self._responses_done += 1
        self._note_if_idle()

    def next_is_head(self) -> bool:
        return bool(self._heads) and self._heads[0]

    def take_request(self) -> None:
        if self._heads:
            self._heads.popleft()

    # --- the guards ----------------------------------------------------------------------------------------

    def _note_if_idle(self) -> None:
        if (
            not self._reading_head
            and not self._in_body
            and self._responses_done >= self._requests_done
            and not self._transport.is_closing()
        ):
            GuardedHttpProtocol._idle[self] = None

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self._loop.call_later(self._limits.header_read_timeout_s, self._refuse, 408)

    def _body_late(self) -> None:
        self._body_timer = None
        if not self._answered:
            self._refuse(408)
        else:
            self._transport.close()

    def _forget(self) -> None:
        GuardedHttpProtocol._fresh.pop(self, None)
        GuardedHttpProtocol._idle.pop(self, None)

    @staticmethod
    def _close_oldest_unused() -> None:
        for unused in (GuardedHttpProtocol._fresh, GuardedHttpProtocol._idle):
            for oldest in unused:
                oldest._refuse(408)
                return

    def _refuse(self, status: int) -> None:
        self._forget()
        # No longer counted at once (uvicorn's protocol leaves the server's set only when the loss is reported, a
        # loop turn later), so the room it leaves is there for the head that arrives next.
        GuardedHttpProtocol._open.discard(self)
        self._server_state.connections.discard(self._http)
        if not self._transport.is_closing():
            self._transport.write(_RESPONSES[status])
            self._transport.close()


class _ResponseWatch:
    """httptools' callbacks for the responses uvicorn's protocol writes: where each begins and ends."""

    def __init__(self, connection: GuardedHttpProtocol) -> None:
        self._connection = connection
        self._final = False

    def on_headers_complete(self) -> None:
        self._final = self._connection.response_status() >= 200  # 100 Continue precedes the answer
        if self._final:
            head_only = self._connection.next_is_head()
            self._connection.take_request()
            self._connection.response_began(head_only)
            if head_only:
                self._final = False  # ended already

    def on_message_complete(self) -> None:
        if self._final:
            self._final = False
            self._connection.response_ended()


class _WatchedTransport:
    """The connection's transport as uvicorn's protocol sees it: the same, with every write also shown to the
    guard's response parser."""

    def __init__(self, transport: asyncio.Transport, connection: GuardedHttpProtocol) -> None:
        self._transport = transport
        self._connection = connection

    def write(self, data: bytes) -> None:
        self._transport.write(data)
        self._connection.watch_written(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    # What uvicorn's protocol calls on every request, passed on without __getattr__'s detour.
    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:  # the rest: abort, set_protocol, write buffer limits, ...
        return getattr(self._transport, name)
