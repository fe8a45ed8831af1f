"""The per-minute rollup (telemetry_1m): one pass of its upkeep, under a lock so one process of many runs it."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.db import sql
from app.db.pool import Pool

# A pass is background work, not a request: the first one, over every stored reading, can take longer than a
# query may (FLEET_QUERY_TIMEOUT_MS).
PASS_TIMEOUT_S = 3600.0


async def roll_up_stored(pool: Pool, settle: timedelta) -> datetime | None:
    """Roll up every reading stored since the last pass and at least ``settle`` ago; the new watermark, or None
    when another process is running a pass."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(sql.TRY_ROLLUP_LOCK):
            return None
        state = await conn.fetchrow(sql.START_ROLLUP_PASS, settle)
        assert state is not None
        low: datetime = state["rolled_up_to"]
        high: datetime = state["settled"]
        if state["first"]:
            await conn.execute(sql.ROLL_UP_ALL, high, timeout=PASS_TIMEOUT_S)
        elif high <= low:
            return low
        else:
            await conn.execute(sql.ROLL_UP_STORED, low, high, timeout=PASS_TIMEOUT_S)
        await conn.execute(sql.SET_ROLLED_UP_TO, high)
        return high
