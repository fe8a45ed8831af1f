"""Health, a database that goes away, failed flushes, and draining on shutdown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec
import pytest

from app import __version__
from app.db import create_pool
from app.ingest import FlushError, Ingestor, Row
from app.latest import LatestState
from app.settings import Settings
from tests.conftest import TcpProxy, serve_in_process
from tests.helpers import count_rows, reading

NOW = datetime.now(UTC)


def _row(robot_id: str, seconds_ago: float, status: str | None = "idle") -> Row:
    return (robot_id, NOW - timedelta(seconds=seconds_ago), 1.0, 2.0, 50.0, None, status, None)


async def test_health_reports_version_and_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__, "database": "up"}


async def test_database_down_gives_503_then_recovers(settings: Settings, conn: asyncpg.Connection) -> None:
    url = urlsplit(settings.database_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))
    app_settings = msgspec.structs.replace(
        settings, database_url=via_proxy, db_timeout_ms=1000, flush_timeout_ms=1500, pool_min_size=1
    )
    async with serve_in_process(app_settings) as client:
        assert (await client.get("/")).status_code == 200

        await proxy.stop()
        down = await client.get("/")
        assert down.status_code == 503
        assert down.json()["database"] == "down"
        rejected = await client.post("/telemetry/", json=reading(at=NOW))
        assert rejected.status_code == 503
        assert rejected.headers["retry-after"] == str(settings.retry_after_s)
        assert rejected.headers["content-type"].startswith("application/problem+json")

        await proxy.start()  # same port: the pool reconnects
        assert (await client.get("/")).status_code == 200
        assert (await client.post("/telemetry/", json=reading(at=NOW))).json() == {
            "accepted": 1,
            "duplicates": 0,
        }
        await proxy.stop()
    assert await count_rows(conn) == (1, 1)


async def test_failed_flush_fails_only_its_own_requests(settings: Settings, conn: asyncpg.Connection) -> None:
    pool = await create_pool(settings)
    # One request per flush, so the bad one travels alone.
    ingestor = Ingestor(
        pool, msgspec.structs.replace(settings, flush_max_rows=1, flush_concurrency=1), LatestState(pool, 1000)
    )
    ingestor.start()
    try:
        before = await ingestor.submit([_row("a", 3)])
        # An enum value the database refuses makes this flush fail after it reached PostgreSQL.
        with pytest.raises(FlushError):
            await asyncio.wait_for(ingestor.submit([_row("b", 2, status="bogus")]), timeout=10)
        after = await ingestor.submit([_row("c", 1)])
    finally:
        await ingestor.close()
        await pool.close()
    assert (before.accepted, after.accepted) == (1, 1)
    robots = {r["robot_id"] for r in await conn.fetch("SELECT robot_id FROM robots")}
    assert robots == {"a", "c"}  # nothing of the failed request, not even its robot, was stored
    assert await count_rows(conn) == (2, 2)


async def test_close_drains_the_buffer_before_returning(settings: Settings, conn: asyncpg.Connection) -> None:
    pool = await create_pool(settings)
    # A flush interval far beyond the test: only close() can make these rows reach the database.
    latest = LatestState(pool, 600_000)
    ingestor = Ingestor(pool, msgspec.structs.replace(settings, flush_interval_ms=600_000), latest)
    ingestor.start()
    submits = [asyncio.create_task(ingestor.submit([_row(f"r{i}", i)])) for i in range(30)]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in submits)
    await ingestor.close()
    results = await asyncio.gather(*submits)
    await latest.close()  # the periodic writer never ran: close() writes what is pending
    await pool.close()
    assert sum(r.accepted for r in results) == 30
    assert await count_rows(conn) == (30, 30)
    assert await conn.fetchval("SELECT count(*) FROM robots WHERE last_seen IS NOT NULL") == 30
    with pytest.raises(FlushError):
        await ingestor.submit([_row("late", 0)])


async def test_startup_repairs_latest_state_left_unwritten(settings: Settings, conn: asyncpg.Connection) -> None:
    # As after a crash between a flush's commit and the latest-state write: readings stored, registry behind.
    async with serve_in_process(settings) as client:
        await client.post("/telemetry/", json=[reading("crashy", NOW - timedelta(seconds=s), seq=s) for s in (1, 2)])
    await conn.execute("UPDATE robots SET last_seen = NULL, seq = NULL")
    await conn.execute(
        "INSERT INTO telemetry (robot_key, time, latitude, longitude, battery_level, seq)"
        " SELECT robot_key, $1, 1, 2, 3, 99 FROM robots",
        NOW,
    )
    async with serve_in_process(settings) as client:
        state = (await client.get("/robots/crashy")).json()
    assert (state["seq"], datetime.fromisoformat(state["last_seen"])) == (99, NOW)
