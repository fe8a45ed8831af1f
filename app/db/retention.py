"""Data lifecycle: which TimescaleDB edition serves, its columnstore policy, and dropping the chunks older than a
cutoff."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from app.db import sql
from app.db.pool import Pool
from app.schemas import DatabaseJob

DEADLOCK_RETRIES = 3
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


async def drop_chunks_before(pool: Pool, cutoff: datetime) -> int | None:
    """Drop every chunk whose readings are all older than ``cutoff``; the number dropped, or None when another
    process is doing it right now. A deadlock with the database's columnstore job (both lock chunks and the
    hypertable) is retried: PostgreSQL aborts one side, and the other has finished by then."""
    for attempt in range(DEADLOCK_RETRIES):
        try:
            async with pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval(sql.TRY_RETENTION_LOCK):
                    return None
                dropped: int = await conn.fetchval(sql.DROP_OLD_CHUNKS, cutoff)
                return dropped
        except asyncpg.DeadlockDetectedError:
            if attempt == DEADLOCK_RETRIES - 1:
                raise
    return None  # pragma: no cover - the loop returns or raises


async def fetch_timescaledb_license(pool: Pool) -> str:
    """``apache`` (what Debian builds: no compression, continuous aggregates or policies) or ``timescale``."""
    license_name: str = await pool.fetchval(sql.SHOW_TIMESCALEDB_LICENSE)
    return license_name


async def fetch_columnstore_policy(pool: Pool) -> tuple[str, bool] | None:
    """How old a chunk of readings is when the columnstore policy converts it, and whether the policy is scheduled
    (not paused); None without such a policy."""
    row = await pool.fetchrow(sql.SELECT_COLUMNSTORE_AFTER)
    return None if row is None else (row[0], row[1])


async def fetch_jobs(pool: Pool) -> list[DatabaseJob]:
    return [DatabaseJob(*row) for row in await pool.fetch(sql.SELECT_JOBS)]
