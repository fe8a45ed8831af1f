"""Data lifecycle in the database's own jobs: the retention policies kept in step with FLEET_RETENTION, the
columnstore policy, and what the jobs did."""

from __future__ import annotations

from datetime import timedelta

from app.model.payloads import DatabaseJob
from app.platform import sql
from app.platform.pool import Pool

RETAINED_TABLES = ("telemetry", "telemetry_1m", "telemetry_15m")  # the readings and both rollups


async def set_retention_policies(pool: Pool, period: timedelta | None) -> bool:
    """Make the database's retention jobs drop what is older than ``period`` (none: no jobs), on the readings and
    both rollups; whether anything changed. Processes started with one setting agree, so this is a no-op after the
    first."""
    changed = False
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(sql.LOCK_RETENTION)
        current = {row[0]: row[1] for row in await conn.fetch(sql.SELECT_RETENTION_POLICIES)}
        for table in RETAINED_TABLES:
            if current.get(table) == period:  # as set already (None: no job, and none wanted)
                continue
            await conn.execute(sql.REMOVE_RETENTION_POLICY, table)
            if period is not None:
                await conn.execute(sql.ADD_RETENTION_POLICY, table, period)
            changed = True
    return changed


async def fetch_timescaledb_license(pool: Pool) -> str:
    """``timescale`` (the community edition, which the migrations need) or ``apache``."""
    license_name: str = await pool.fetchval(sql.SHOW_TIMESCALEDB_LICENSE)
    return license_name


async def fetch_columnstore_policy(pool: Pool) -> tuple[str, bool] | None:
    """How old a chunk of readings is when the columnstore policy converts it, and whether the policy is scheduled
    (not paused); None without such a policy."""
    row = await pool.fetchrow(sql.SELECT_COLUMNSTORE_AFTER)
    return None if row is None else (row[0], row[1])


async def fetch_jobs(pool: Pool) -> list[DatabaseJob]:
    return [DatabaseJob(*row) for row in await pool.fetch(sql.SELECT_JOBS)]
