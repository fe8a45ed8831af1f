"""What the HTTP server itself enforces before the app sees a request: header size, header-read and body-read
time, idle time and the number of connections, as uvicorn's httptools protocol with guards added."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.platform.settings import ServerSettings, load_settings
from app.web.admission import CLOSE_CONNECTION_KEY

_RESPONSES = {
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    408: b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
}
_HEADER_LINE_OVERHEAD_BYTES = 4  # ": " and CRLF


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's protocol, plus:

    - a request's head (request line and headers) must arrive within ``header_read_timeout_s`` of the connection or
      of the request's first byte, and must not exceed ``max_header_bytes``; otherwise 408 or 431 and the
      connection is closed. A connection that never sends a byte is closed the same way.
    - a request's body must arrive within ``body_read_timeout_s`` of its head, answered or not; otherwise the
      connection is closed (with 408 if nothing was answered yet).
    - at ``max_connections``, a new connection closes the oldest one that has not sent a whole request head yet,
      else the oldest idle between requests (as nginx closes idle kept-alive connections when it runs short), so
      that connections which never send a request cannot keep out those that do. Past that, uvicorn answers 503.
    - the request's scope carries a way to close its connection (app.web.admission ends a revoked credential's
      requests with it).
    """

    limits: ServerSettings | None = None  # read once per process: the class is named, not built, in uvicorn's config
    # Oldest first (a dict keeps insertion order), one of each per process: connections that have not yet sent a
    # whole head, the first to close at capacity; then those idle between requests.
    _fresh: dict[GuardedHttpToolsProtocol, None] = {}  # noqa: RUF012
    _idle: dict[GuardedHttpToolsProtocol, None] = {}  # noqa: RUF012

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = GuardedHttpToolsProtocol.limits
        if limits is None:
            limits = GuardedHttpToolsProtocol.limits = load_settings().server
        self._head_bytes = 0
        self._reading_head = True
        self._in_body = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()
        if len(self.connections) >= limits.max_connections:
            self._close_oldest_unused()
        GuardedHttpToolsProtocol._fresh[self] = None

    def data_received(self, data: bytes) -> None:
        reading_head = self._reading_head
        if reading_head:
            self._head_bytes += len(data)
        super().data_received(data)  # may complete the head (and start a body) in this very chunk
        limits = GuardedHttpToolsProtocol.limits
        if reading_head and self._reading_head and limits and self._head_bytes > limits.max_header_bytes:
            self._refuse(431)
        elif self._in_body and self._body_timer is None and limits is not None and not self.transport.is_closing():
            # Armed only when a body spans reads: most requests arrive whole in one, and cost no timer.
            self._body_timer = self.loop.call_later(limits.body_read_timeout_s, self._body_late)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_head:  # the next request on a kept-alive connection
            self._reading_head = True
            self._head_bytes = 0
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        if self.transport.is_closing():  # refused while the parser still had bytes of this read to go through
            return
        self._reading_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        limits = GuardedHttpToolsProtocol.limits
        if limits is not None and self._head_size() > limits.max_header_bytes:  # the head came whole in one read
            self._refuse(431)
            return
        self._forget()
        self._in_body = True
        # abort, not close: close would first wait for the client to read what is buffered for it, and a client that
        # reads nothing is exactly what this ends.
        self.scope[CLOSE_CONNECTION_KEY] = self.transport.abort  # type: ignore[literal-required]
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self.cycle is not None and not self.transport.is_closing():
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if self.cycle is not None and not self.transport.is_closing():
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            GuardedHttpToolsProtocol._idle[self] = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def _head_size(self) -> int:
        return len(self.url) + sum(len(k) + len(v) + _HEADER_LINE_OVERHEAD_BYTES for k, v in self.headers)

    def _arm_head_timer(self) -> None:
        limits = GuardedHttpToolsProtocol.limits
        if self._head_timer is not None:
            self._head_timer.cancel()
        if limits is not None:
            self._head_timer = self.loop.call_later(limits.header_read_timeout_s, self._refuse, 408)

    def _body_late(self) -> None:
        self._body_timer = None
        if self.cycle is not None and not self.cycle.response_started:
            self._refuse(408)
        else:
            self.transport.close()

    def _forget(self) -> None:
        GuardedHttpToolsProtocol._fresh.pop(self, None)
        GuardedHttpToolsProtocol._idle.pop(self, None)

    @staticmethod
    def _close_oldest_unused() -> None:
        for unused in (GuardedHttpToolsProtocol._fresh, GuardedHttpToolsProtocol._idle):
            for oldest in unused:
                oldest._refuse(408)
                return

    def _refuse(self, status: int) -> None:
        self._forget()
        # No longer counted at once (uvicorn discards it only when the loss is reported, a loop turn later), so
        # the room it leaves is there for the head that arrives next.
        self.connections.discard(self)
        if not self.transport.is_closing():
            self.transport.write(_RESPONSES[status])
            self.transport.close()
