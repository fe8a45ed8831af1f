"""Health, a database that goes away, failed flushes, and draining on shutdown."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from app import __version__
from app.model.errors import ErrorKind, StorageUnavailable
from app.model.reading import Row
from app.platform.pool import create_pool
from app.platform.settings import Settings, replace_settings
from app.telemetry.buffer import Ingestor
from app.telemetry.latest import LatestState
from tests.support.builders import count_rows, make_row, reading, series
from tests.support.database import PAUSE_POLICIES, REFRESH_EVERY_30_S, REFRESH_EVERY_SECOND
from tests.support.problems import assert_problem
from tests.support.proxy import TcpProxy
from tests.support.servers import serve_in_process

NOW = datetime.now(UTC)


def _row(robot_id: str, seconds_ago: float, status: str | None = "idle") -> Row:
    return make_row(robot_id, NOW - timedelta(seconds=seconds_ago), status=status)


async def test_health_reports_version_and_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    # These tests run with authentication off, which health says out loud.
    body = response.json()
    storage = body.pop("storage")
    assert body == {"status": "ok", "version": __version__, "database": "up", "authentication": "off"}
    # What start-up found: the edition serving and what is enabled (the tests pause the columnstore policy).
    assert storage["retention"] == "off"
    assert (storage["timescaledb_license"], storage["compression"]) == (
        "timescale",
        "columnstore, chunks converted after 1 day (policy paused)",
    )


async def test_database_down_gives_503_then_recovers(settings: Settings, conn: asyncpg.Connection) -> None:
    url = urlsplit(settings.database.database_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))
    app_settings = replace_settings(
        settings, database_url=via_proxy, health_timeout_ms=1000, flush_timeout_ms=1500, pool_min_size=1
    )
    async with serve_in_process(app_settings) as client:
        assert (await client.get("/")).status_code == 200

        await proxy.stop()
        down = await client.get("/")
        assert down.status_code == 503
        assert down.json()["database"] == "down"
        rejected = await client.post("/telemetry/", json=reading(at=NOW))
        assert_problem(rejected, ErrorKind.STORAGE_UNAVAILABLE)
        assert rejected.headers["retry-after"] == str(settings.ingest.retry_after_s)

        await proxy.start()  # same port: the pool reconnects
        assert (await client.get("/")).status_code == 200
        assert (await client.post("/telemetry/", json=reading(at=NOW))).json() == {
            "accepted": 1,
            "duplicates": 0,
        }
        await proxy.stop()
    assert await count_rows(conn) == (1, 1)


async def test_failed_flush_fails_only_its_own_requests(settings: Settings, conn: asyncpg.Connection) -> None:
    pool = await create_pool(settings.database)
    # One request per flush, so the bad one travels alone.
    tuned = replace_settings(settings, flush_max_rows=1, flush_concurrency=1)
    ingestor = Ingestor(pool, tuned.ingest, LatestState(pool, pool, 1000))
    ingestor.start()
    try:
        before = await ingestor.submit([_row("a", 3)])
        # An enum value the database refuses makes this flush fail after it reached PostgreSQL.
        with pytest.raises(StorageUnavailable):
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
    pool = await create_pool(settings.database)
    # A flush interval far beyond the test: only close() can make these rows reach the database.
    latest = LatestState(pool, pool, 600_000)
    ingestor = Ingestor(pool, replace_settings(settings, flush_interval_ms=600_000).ingest, latest)
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
    assert await conn.fetchval("SELECT count(*) FROM robot_latest") == 30
    with pytest.raises(StorageUnavailable):
        await ingestor.submit([_row("late", 0)])


async def test_a_round_repairs_latest_state_left_unwritten(settings: Settings, conn: asyncpg.Connection) -> None:
    # As after a crash between a flush's commit and the latest-state write: readings stored, registry behind. No
    # start-up scan: the next alert round follows the readings from where the last one stopped.
    async with serve_in_process(settings) as client:
        await client.post("/telemetry/", json=[reading("crashy", NOW - timedelta(seconds=s), seq=s) for s in (1, 2)])
    await conn.execute("DELETE FROM robot_latest")
    await conn.execute(
        "INSERT INTO telemetry (robot_key, time, latitude, longitude, battery_level, seq)"
        " SELECT robot_key, $1, 1, 2, 3, 99 FROM robots",
        NOW,
    )
    async with serve_in_process(settings) as client:
        for _ in range(200):
            state = (await client.get("/robots/crashy")).json()
            if state.get("seq") == 99:
                break
            await asyncio.sleep(0.05)
    assert (state["seq"], datetime.fromisoformat(state["timestamp"])) == (99, NOW)


async def test_frozen_database_answers_every_request_within_its_deadline(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    url = urlsplit(settings.database.database_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))
    frozen_settings = replace_settings(
        settings,
        database_url=via_proxy,
        health_timeout_ms=500,
        flush_timeout_ms=1000,
        max_queued_rows=6,
        flush_concurrency=1,
    )
    async with serve_in_process(frozen_settings) as client:
        assert (await client.post("/telemetry/", json=reading("warm", NOW))).status_code == 200
        proxy.freeze()
        try:
            started = time.monotonic()
            first = asyncio.create_task(client.post("/telemetry/", json=series("a", 4)))
            await asyncio.sleep(0.1)  # taken into a flush that hangs
            second = asyncio.create_task(client.post("/telemetry/", json=series("b", 4)))
            await asyncio.sleep(0.1)  # queued behind it: 4 of 6 rows
            shed = await client.post("/telemetry/", json=series("c", 4))
            shed_after = time.monotonic() - started
            assert_problem(shed, ErrorKind.STORAGE_UNAVAILABLE)
            assert "queue is full" in shed.json()["detail"] and shed_after < 0.5
            health = await client.get("/")
            assert health.status_code == 503 and time.monotonic() - started < 0.2 + 0.5 + 0.4
            for task in (first, second):
                assert_problem(await task, ErrorKind.STORAGE_UNAVAILABLE)
            assert time.monotonic() - started < 0.2 + 1.0 + 0.5  # each within its own 1 s deadline
        finally:
            proxy.thaw()
        # The hung flush ends when the database answers again; then ingest works.
        for _ in range(50):
            if (await client.post("/telemetry/", json=reading("after", NOW))).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("ingest did not recover after the database thawed")
    await proxy.stop()


async def test_the_database_runs_its_jobs_and_health_and_metrics_show_them(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    """The jobs TimescaleDB's scheduler runs for the service, run by it in its background workers (paused in the
    tests, run once here), with their last run and failures, sampled every 10 s. Every background run failed
    before scripts/db.sh patched TimescaleDB for PostgreSQL 15.20 ("cannot drop portal")."""
    runs = "SELECT job_id, coalesce(total_runs, 0), coalesce(total_failures, 0) FROM timescaledb_information.job_stats"
    before = {row[0]: (row[1], row[2]) for row in await conn.fetch(runs)}  # (a paused job run was cancelled)
    run_now = "SELECT alter_job(job_id, scheduled => true, next_start => now()) FROM timescaledb_information.jobs"
    await conn.execute(f"{run_now} WHERE proc_name = 'policy_compression'")
    await conn.execute(REFRESH_EVERY_SECOND)  # anew: a fault test may have left the old one held for 5 minutes
    try:
        names = {"policy_compression on telemetry", "refresh_minutes"}
        for _ in range(300):
            jobs = {job["name"]: job for job in (await client.get("/")).json()["storage"]["jobs"]}
            if set(jobs) == names and all(job["runs"] > before.get(job["job_id"], (0, 0))[0] for job in jobs.values()):
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.execute(f"{PAUSE_POLICIES}; {REFRESH_EVERY_30_S}")
    for job in jobs.values():
        assert job["runs"] > before.get(job["job_id"], (0, 0))[0], job  # run by the scheduler, here
        assert job["last_run_status"] == "Success", job
        assert job["failures"] == before.get(job["job_id"], (0, 0))[1], job
        assert job["last_success_at"] is not None
        assert set(job) >= {"last_run_at", "scheduled", "next_start"}
    exposition = (await client.get("/metrics")).text
    for name, job in jobs.items():
        assert f'fleet_database_job_failures{{job="{name}"}} {float(job["failures"])}' in exposition
