"""The app served for tests: in-process on the test's event loop, or under real uvicorn on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx
import uvicorn

from app.platform.settings import Settings
from app.web.app import create_app
from app.web.lifespan import SERVICES_KEY, Services


@dataclass(frozen=True, slots=True)
class Served:
    http: httpx.AsyncClient
    services: Services  # what the tests drive directly: an alert round, the latest state written now


@asynccontextmanager
async def serve_in_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app on this event loop, lifespan included. Unlike Litestar's test client, which runs each request to
    completion through a blocking portal, concurrent requests here really overlap."""
    async with serve_app_in_process(settings) as served:
        yield served.http


@asynccontextmanager
async def serve_app_in_process(settings: Settings) -> AsyncIterator[Served]:
    """As serve_in_process, with the app's services."""
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
            yield Served(http, app.state[SERVICES_KEY])
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
