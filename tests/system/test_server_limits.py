"""The server's guards (app.cli.serve_limits) around real uvicorn on loopback, with a tiny app: at capacity the
oldest connection idle between requests makes room, and a connection mid-answer (a HEAD's, a 100 Continue's, a
stream's) is never taken for idle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from app.cli.serve_limits import GuardedHttpProtocol
from app.platform.settings import ServerSettings
from app.web.admission import CONNECTION_CLOSER

MAX_CONNECTIONS = 4
HELD = MAX_CONNECTIONS - 1  # uvicorn answers 503 while max_connections are open, the asking one counted
READ_WITHIN_S = 5.0
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def tiny_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """/stream answers a head and then waits, as a live stream does; /closer says whether the server gave this
    request's task a way to close its connection; anything else answers 'ok'."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b"ok" if scope["path"] != "/closer" else str(CONNECTION_CLOSER.get() is not None).encode()
    headers = [(b"content-length", str(len(body)).encode())] if scope["path"] != "/stream" else []
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["path"] == "/stream":
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await asyncio.sleep(3600)
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, int]]:
    GuardedHttpProtocol.limits = ServerSettings(max_connections=MAX_CONNECTIONS, header_read_timeout_s=30)
    config = uvicorn.Config(
        tiny_app, host="127.0.0.1", port=0, http=GuardedHttpProtocol, limit_concurrency=MAX_CONNECTIONS,
        lifespan="off", log_level="warning", timeout_keep_alive=60,
    )  # fmt: skip
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    while not served.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    try:
        yield "127.0.0.1", served.servers[0].sockets[0].getsockname()[1]
    finally:
        served.should_exit = True
        served.force_exit = True  # the stream never ends on its own
        await task
        GuardedHttpProtocol.limits = None


async def ask(connection: Connection, request: bytes, expected: bytes) -> bytes:
    reader, writer = connection
    writer.write(request)
    reply = b""
    while expected not in reply:
        chunk = await asyncio.wait_for(reader.read(1000), READ_WITHIN_S)
        assert chunk, f"closed after {reply!r}"
        reply += chunk
    return reply


async def is_closed(connection: Connection) -> bool:
    """Whether the server closes it within a second (after a 408 or not)."""
    try:
        async with asyncio.timeout(1.0):
            while await connection[0].read(1000):
                pass
    except TimeoutError:
        return False
    return True


async def test_at_capacity_the_oldest_idle_connection_makes_room(server: tuple[str, int]) -> None:
    connections = [await asyncio.open_connection(*server) for _ in range(HELD)]
    try:
        # A plain answer, a HEAD's (a length but no body) and one after 100 Continue: each ends, each idle after.
        await ask(connections[0], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"ok")
        await ask(connections[1], b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", b"\r\n\r\n")
        reply = await ask(
            connections[2],
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
            b"ok",
        )
        assert reply.startswith(b"HTTP/1.1 100 Continue")
        for expected_closed in range(HELD):  # each newcomer closes the oldest idle one, and is served
            newcomer = await asyncio.open_connection(*server)
            assert await is_closed(connections[expected_closed])
            assert (await ask(newcomer, b"GET /closer HTTP/1.1\r\nHost: x\r\n\r\n", b"True")).startswith(
                b"HTTP/1.1 200"
            )
            connections.append(newcomer)
    finally:
        for _, writer in connections:
            writer.close()


async def test_a_connection_mid_answer_is_never_closed_to_make_room(server: tuple[str, int]) -> None:
    streaming = await asyncio.open_connection(*server)
    others = [await asyncio.open_connection(*server) for _ in range(HELD - 1)]
    try:
        await ask(streaming, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", b"data: 1\n\n")
        for other in others:
            await ask(other, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"ok")
        newcomer = await asyncio.open_connection(*server)
        others.append(newcomer)
        assert await is_closed(others[0])  # the oldest idle one, though the stream is older
        assert not await is_closed(streaming)
        assert (await ask(newcomer, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"ok")).startswith(b"HTTP/1.1 200")
    finally:
        for _, writer in [streaming, *others]:
            writer.close()
