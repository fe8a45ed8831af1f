"""Fixtures: a real TimescaleDB (the project-local cluster, started if needed), one test database, isolation by
truncation, and the app served in-process."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest
import uvicorn

from app.db import apply_migrations
from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE = "fleet_test"
# Identifiers cannot be $n parameters; these are fixed names, never input.
DROP_TEST_DATABASE = f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)'
CREATE_TEST_DATABASE = f'CREATE DATABASE "{TEST_DATABASE}"'
TRUNCATE_ALL = "TRUNCATE telemetry, robots RESTART IDENTITY"


DB_SCRIPT = ROOT / "scripts" / "db.sh"


def _db_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(DB_SCRIPT), *args], capture_output=True, text=True)


def database_url_for(server_url: str, database: str) -> str:
    return server_url.rsplit("/", 1)[0] + "/" + database


async def recreate_database(server_url: str, drop_sql: str, create_sql: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(drop_sql)
        await conn.execute(create_sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """FLEET_TEST_SERVER_URL names a running server to use; otherwise the project-local cluster is started, and
    stopped again at the end if this run started it."""
    if url := os.environ.get("FLEET_TEST_SERVER_URL"):
        yield url
        return
    was_running = _db_script("status").returncode == 0
    subprocess.run(["bash", str(DB_SCRIPT), "up"], check=True)
    yield _db_script("url").stdout.strip()
    if not was_running:
        _db_script("down")


@pytest.fixture(scope="session")
def database_url(server_url: str) -> str:
    asyncio.run(recreate_database(server_url, DROP_TEST_DATABASE, CREATE_TEST_DATABASE))
    url = database_url_for(server_url, TEST_DATABASE)
    asyncio.run(apply_migrations(url))
    return url


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to an emptied test database: every test starts from no robots and no readings."""
    connection = await asyncpg.connect(database_url)
    await connection.execute(TRUNCATE_ALL)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, migrate_on_start=False, flush_interval_ms=2)


@asynccontextmanager
async def serve_in_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app on this event loop, lifespan included. Unlike Litestar's test client, which runs each request to
    completion through a blocking portal, concurrent requests here really overlap."""
    app = create_app(settings)
    started, stopping = asyncio.Event(), asyncio.Event()

    # The lifespan runs in a task of its own: it opens anyio scopes that must close in the task that opened them,
    # and pytest-asyncio tears fixtures down in another task.
    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stopping.wait()

    lifespan = asyncio.create_task(run_lifespan())
    ready = asyncio.create_task(started.wait())
    await asyncio.wait({lifespan, ready}, return_when=asyncio.FIRST_COMPLETED)
    if lifespan.done():
        ready.cancel()
        await lifespan  # raises the start-up error
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=cast(Any, app)), base_url="http://fleet.test", timeout=30
        ) as http:
            yield http
    finally:
        stopping.set()
        await lifespan


@asynccontextmanager
async def live_api(settings: Settings) -> AsyncIterator[str]:
    """The real app under uvicorn on a free loopback port, in this event loop; yields its base URL."""
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def client(settings: Settings, conn: asyncpg.Connection) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(settings) as http:
        yield http


class TcpProxy:
    """A loopback TCP relay to PostgreSQL that a test can cut, to make the database 'go down' for the app."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
