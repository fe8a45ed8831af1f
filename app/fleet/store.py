"""Fleet-wide questions over the readings: path length per robot, and time per status per robot. Both read the
quarter-hour rollup (telemetry_15m) for whole periods, and the readings for the rest."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import asyncpg

from app.fleet import queries as sql
from app.platform.pool import Pool
from app.rollups import snapshots as rollups
from app.rollups.periods import PERIOD, ceil_to, floor_to


async def fetch_distances(pool: Pool, since: datetime, until: datetime) -> list[tuple[str, int, float]]:
    """``(robot_id, readings, metres)`` per robot with readings in [since, until), by robot_id."""
    first, last = ceil_to(since, PERIOD), floor_to(until, PERIOD)
    async with pool.acquire() as conn, rollups.snapshot(conn) as state:
        if state.rolled_up_xid is None or state.status_gap_s is None or first >= last:
            rows = await conn.fetch(sql.SELECT_DISTANCES, since, until)
        else:
            rows = await conn.fetch(sql.SELECT_DISTANCES_ROLLED_UP, since, until, first, last, state.rolled_up_xid)
    return [(row["robot_id"], row["readings"], row["metres"]) for row in rows]


async def fetch_status_seconds(
    pool: Pool, since: datetime, until: datetime, max_gap_s: int, now: datetime
) -> dict[str, dict[str, float]]:
    """Seconds each robot spent in each status over [since, until), a status lasting at most ``max_gap_s`` and
    never past ``now``."""
    # Whole periods that ended before now: within them, no status is cut short by now.
    first, last = ceil_to(since, PERIOD), min(floor_to(until, PERIOD), floor_to(now, PERIOD))
    async with pool.acquire() as conn, rollups.snapshot(conn) as state:
        if state.rolled_up_xid is None or state.status_gap_s != max_gap_s or first >= last:
            rows = await conn.fetch(sql.SELECT_STATUS_SECONDS, since, until, max_gap_s, now)
        else:
            rows = await conn.fetch(
                sql.SELECT_STATUS_SECONDS_ROLLED_UP, since, until, first, last, state.rolled_up_xid, max_gap_s, now
            )
    return seconds_by_robot(rows)


def seconds_by_robot(rows: Iterable[asyncpg.Record]) -> dict[str, dict[str, float]]:
    """Rows of (robot_id, status, seconds), either statement's, as seconds per status per robot."""
    seconds: dict[str, dict[str, float]] = defaultdict(dict)
    for row in rows:
        seconds[row["robot_id"]][row["status"]] = float(row["seconds"])
    return seconds
