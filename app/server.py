"""What the HTTP server itself enforces before the app sees a request: header size, header-read time, idle time
and the number of connections, as uvicorn's httptools protocol with two guards added."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import ServerSettings, load_settings

_RESPONSES = {
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    408: b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's protocol, plus: a request's head (request line and headers) must arrive within
    ``header_read_timeout_s`` of the connection or of the request's first byte, and must not exceed
    ``max_header_bytes``; otherwise 408 or 431 and the connection is closed. A connection that never sends a byte
    is closed the same way, so half-open connections cannot pile up."""

    limits: ServerSettings | None = None  # read once per process: the class is named, not built, in uvicorn's config

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if GuardedHttpToolsProtocol.limits is None:
            GuardedHttpToolsProtocol.limits = load_settings().server
        self._head_bytes = 0
        self._reading_head = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        reading_head = self._reading_head
        if reading_head:
            self._head_bytes += len(data)
        super().data_received(data)  # may complete the head (and start a body) in this very chunk
        limits = GuardedHttpToolsProtocol.limits
        if reading_head and self._reading_head and limits and self._head_bytes > limits.max_header_bytes:
            self._refuse(431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_head:  # the next request on a kept-alive connection
            self._reading_head = True
            self._head_bytes = 0
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        limits = GuardedHttpToolsProtocol.limits
        if self._head_timer is not None:
            self._head_timer.cancel()
        if limits is not None:
            self._head_timer = self.loop.call_later(limits.header_read_timeout_s, self._refuse, 408)

    def _refuse(self, status: int) -> None:
        if not self.transport.is_closing():
            self.transport.write(_RESPONSES[status])
            self.transport.close()
