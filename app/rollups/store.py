"""The rollups: telemetry_15m per quarter hour, kept by a pass of the service's (under a lock, so one process of
many runs it), and telemetry_1m per minute, a continuous aggregate the database refreshes; the snapshot in which
a query reads them together with the readings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from app.model.payloads import DatabaseJob
from app.platform.pool import Connection, Pool
from app.rollups import queries as sql
from app.rollups.periods import RollupState

# A pass is background work, not a request: the first one, over every stored reading, can take longer than a
# query may (FLEET_QUERY_TIMEOUT_MS).
PASS_TIMEOUT_S = 3600.0
FIRST_POSITION = 0  # below every stored_xid: the first pass starts here


async def roll_up_stored(pool: Pool, status_gap_s: int) -> int | None:
    """Roll up into telemetry_15m every reading stored since the last pass whose transaction has ended
    (sql.COMMITTED_BELOW: no settle time to trust); the new watermark, or None when another process is running a
    pass. The first pass (also after a reset to NULL) and one with another status gap than the quarter hours hold
    roll them all up again. (A continuous aggregate cannot hold these: a period's time per status needs lead()
    across its readings.)"""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(sql.TRY_ROLLUP_LOCK):
            return None
        state = await conn.fetchrow(sql.START_ROLLUP_PASS)
        assert state is not None
        first = state["rolled_up_xid"] is None
        low: int = FIRST_POSITION if first else state["rolled_up_xid"]
        high: int = max(low, state["settled"])
        if first or state["status_gap_s"] != status_gap_s:  # first: a reset may have left rows behind
            await conn.execute(sql.DELETE_PERIODS)
            await conn.execute(sql.ROLL_UP_ALL_PERIODS, FIRST_POSITION, high, status_gap_s, timeout=PASS_TIMEOUT_S)
            await conn.execute(sql.SET_STATUS_GAP, status_gap_s)
        elif high > low:
            late = await conn.fetch(sql.APPEND_FRESH_PERIODS, low, high, status_gap_s, timeout=PASS_TIMEOUT_S)
            if late:
                keys, periods = [row["robot_key"] for row in late], [row["period"] for row in late]
                await conn.execute(sql.ROLL_UP_LATE_PERIODS, keys, periods, status_gap_s, high, timeout=PASS_TIMEOUT_S)
        await conn.execute(sql.SET_ROLLED_UP_TO, high)
        return high


@asynccontextmanager
async def snapshot(conn: Connection) -> AsyncIterator[RollupState]:
    """A read-only repeatable-read transaction on ``conn`` in which rollups and readings agree: no reading is
    counted twice or missed. Queries get the watermark as a parameter, not a subquery, so the planner sees how
    recent it is and reads what was stored since through the stored_xid index."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(sql.FORCE_CUSTOM_PLAN)
        row = await conn.fetchrow(sql.SELECT_ROLLUP_STATE)
        assert row is not None
        # Before the first pass, readings from before positions existed (stored_xid NULL) are in neither part.
        yield RollupState(row["rolled_up_xid"], row["status_gap_s"], row["refreshed_xid"], row["refreshed_to"])


# --- the data lifecycle: retention, the columnstore policy, the database's jobs ---------------------------------

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
