"""Retention drops whole day-chunks older than FLEET_RETENTION, at start-up and hourly, and nothing newer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from app.db import rollups
from app.retention import Retention
from app.settings import Settings, replace_settings
from tests.support.servers import serve_in_process

NOW = datetime.now(UTC).replace(microsecond=0)
INSERT = """
INSERT INTO telemetry (robot_key, time, latitude, longitude, battery_level)
SELECT r.robot_key, t, 1.0, 2.0, 50 FROM robots r, unnest($1::timestamptz[]) t WHERE r.robot_id = 'old-timer'
"""


async def load(conn: asyncpg.Connection, *ages_days: float) -> None:
    await conn.execute("INSERT INTO robots (robot_id) VALUES ('old-timer') ON CONFLICT DO NOTHING")
    await conn.execute(INSERT, [NOW - timedelta(days=age) for age in ages_days])


async def stored_ages(conn: asyncpg.Connection) -> list[int]:
    rows = await conn.fetch("SELECT time FROM telemetry ORDER BY time")
    return [round((NOW - row["time"]) / timedelta(days=1)) for row in rows]


async def rolled_up_ages(conn: asyncpg.Connection) -> list[list[int]]:
    return [
        [round((NOW - row[0]) / timedelta(days=1)) for row in await conn.fetch(query)]
        for query in ("SELECT minute FROM telemetry_1m ORDER BY 1", "SELECT period FROM telemetry_15m ORDER BY 1")
    ]


async def wait_for_ages(conn: asyncpg.Connection, ages: list[int], within_s: float = 5.0) -> None:
    """Until only readings of these ages (days) are stored, or ``within_s`` passed (the caller then asserts)."""
    for _ in range(int(within_s / 0.1)):
        if await stored_ages(conn) == ages:
            return
        await asyncio.sleep(0.1)


async def test_chunks_past_the_period_are_dropped_and_nothing_newer(
    conn: asyncpg.Connection, database_url: str
) -> None:
    await load(conn, 120, 100, 95, 89, 30, 1)
    async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as pool:
        await rollups.roll_up_stored(pool, 300)
        assert await rolled_up_ages(conn) == [[120, 100, 95, 89, 30, 1]] * 2
        retention = Retention(pool, timedelta(days=90))
        # The 120-, 100- and 95-day-old chunks of the readings and of both rollups.
        assert await retention.apply_once() == 3 * 3
        assert await retention.apply_once() == 0  # idempotent
    assert await stored_ages(conn) == [89, 30, 1]
    assert await rolled_up_ages(conn) == [[89, 30, 1]] * 2


async def test_the_service_applies_retention_at_start_up(settings: Settings, conn: asyncpg.Connection) -> None:
    await load(conn, 60, 45, 10)
    async with serve_in_process(replace_settings(settings, retention="40d")):
        await wait_for_ages(conn, [10])
    assert await stored_ages(conn) == [10]


async def test_the_community_edition_drops_by_its_own_jobs(settings: Settings, conn: asyncpg.Connection) -> None:
    """With FLEET_RETENTION set, the service makes retention jobs of the database's scheduler on the readings and
    both rollups (their first run an hour away: the service dropped at start-up itself); set off, it removes them."""
    if await conn.fetchval("SHOW timescaledb.license") != "timescale":
        pytest.skip("the Apache edition has no job scheduler for retention")
    policies = (
        "SELECT hypertable_name, config ->> 'drop_after', next_start > now() + interval '50 minutes'"
        " FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' ORDER BY 1"
    )
    await load(conn, 60, 10)
    async with serve_in_process(replace_settings(settings, retention="40d")):
        await wait_for_ages(conn, [10])
    assert await stored_ages(conn) == [10]
    assert [tuple(row) for row in await conn.fetch(policies)] == [
        ("telemetry", "40 days", True),
        ("telemetry_15m", "40 days", True),
        ("telemetry_1m", "40 days", True),
    ]
    async with serve_in_process(replace_settings(settings, retention="50d")):
        pass
    assert {row[1] for row in await conn.fetch(policies)} == {"50 days"}
    async with serve_in_process(settings):  # FLEET_RETENTION=off
        pass
    assert await conn.fetch(policies) == []
