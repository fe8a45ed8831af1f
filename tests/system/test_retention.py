"""Retention is the database's own jobs: they drop whole day-chunks older than FLEET_RETENTION, of the readings
and both rollups, as soon as the service sets them and hourly after, and nothing newer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from app.platform.settings import Settings, replace_settings
from app.rollups import store as rollups
from tests.support.database import refresh_minutes
from tests.support.servers import serve_in_process

NOW = datetime.now(UTC).replace(microsecond=0)
INSERT = """
INSERT INTO telemetry (robot_key, time, latitude, longitude, battery_level)
SELECT r.robot_key, t, 1.0, 2.0, 50 FROM robots r, unnest($1::timestamptz[]) t WHERE r.robot_id = 'old-timer'
"""
POLICIES = (
    "SELECT hypertable_name, config ->> 'drop_after', schedule_interval FROM timescaledb_information.jobs"
    " WHERE proc_name = 'policy_retention' ORDER BY 1"
)
# The materialized minutes (a refresh stores them; the view adds later ones from the readings).
MATERIALIZED_MINUTES = (
    "SELECT minute FROM telemetry_1m WHERE minute < (SELECT refreshed_to FROM rollup_state) ORDER BY 1"
)


async def load(conn: asyncpg.Connection, *ages_days: float) -> None:
    await conn.execute("INSERT INTO robots (robot_id) VALUES ('old-timer') ON CONFLICT DO NOTHING")
    await conn.execute(INSERT, [NOW - timedelta(days=age) for age in ages_days])


async def stored_ages(conn: asyncpg.Connection) -> list[int]:
    rows = await conn.fetch("SELECT time FROM telemetry ORDER BY time")
    return [round((NOW - row["time"]) / timedelta(days=1)) for row in rows]


async def rolled_up_ages(conn: asyncpg.Connection) -> list[list[int]]:
    return [
        [round((NOW - row[0]) / timedelta(days=1)) for row in await conn.fetch(query)]
        for query in (MATERIALIZED_MINUTES, "SELECT period FROM telemetry_15m ORDER BY 1")
    ]


async def wait_for(check: object, within_s: float = 60.0) -> None:
    """Until ``check()`` is true, or ``within_s`` passed (the caller then asserts). The scheduler starts a new
    job within a second or so; a loaded machine can take longer."""
    for _ in range(int(within_s / 0.1)):
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)


async def test_the_database_drops_past_the_period_and_nothing_newer(
    settings: Settings, conn: asyncpg.Connection, database_url: str
) -> None:
    """From start-up: the service makes one job per table, run at once and then hourly; the 120-, 100- and
    95-day-old chunks of the readings and both rollups go, the 89-day-old ones stay."""
    await load(conn, 120, 100, 95, 89, 30, 1)
    async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as pool:
        await refresh_minutes(pool)
        await rollups.roll_up_stored(pool, 300)
    assert await rolled_up_ages(conn) == [[120, 100, 95, 89, 30, 1]] * 2
    async with serve_in_process(replace_settings(settings, retention="90d")):
        await wait_for(lambda: _all_gone(conn, [89, 30, 1]))
    assert await stored_ages(conn) == [89, 30, 1]
    assert await rolled_up_ages(conn) == [[89, 30, 1]] * 2
    assert [tuple(row) for row in await conn.fetch(POLICIES)] == [
        (table, "90 days", timedelta(hours=1)) for table in ("telemetry", "telemetry_15m", "telemetry_1m")
    ]


async def _all_gone(conn: asyncpg.Connection, ages: list[int]) -> bool:
    return await stored_ages(conn) == ages and await rolled_up_ages(conn) == [ages] * 2


async def test_the_jobs_follow_the_setting(settings: Settings, conn: asyncpg.Connection) -> None:
    """Another FLEET_RETENTION replaces the jobs; a restart with the same one leaves them as they are; off
    removes them."""
    async with serve_in_process(replace_settings(settings, retention="40d")):
        pass
    jobs = await conn.fetch("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'")
    async with serve_in_process(replace_settings(settings, retention="40d")):
        pass
    assert (
        await conn.fetch("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'") == jobs
    )
    async with serve_in_process(replace_settings(settings, retention="50d")):
        pass
    assert {row[1] for row in await conn.fetch(POLICIES)} == {"50 days"}
    async with serve_in_process(settings):  # FLEET_RETENTION=off
        pass
    assert await conn.fetch(POLICIES) == []
