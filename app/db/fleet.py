"""Fleet-wide questions over the readings: path length per robot, and time per status per robot."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from app.db import sql
from app.db.pool import Pool


async def fetch_distances(pool: Pool, since: datetime, until: datetime) -> list[tuple[str, int, float]]:
    """``(robot_id, readings, metres)`` per robot with readings in [since, until), by robot_id."""
    rows = await pool.fetch(sql.SELECT_DISTANCES, since, until)
    return [(row["robot_id"], row["readings"], row["metres"]) for row in rows]


async def fetch_status_seconds(
    pool: Pool, since: datetime, until: datetime, max_gap_s: int, now: datetime
) -> dict[str, dict[str, float]]:
    """Seconds each robot spent in each status over [since, until), a status lasting at most ``max_gap_s`` and
    never past ``now``."""
    seconds: dict[str, dict[str, float]] = defaultdict(dict)
    for row in await pool.fetch(sql.SELECT_STATUS_SECONDS, since, until, max_gap_s, now):
        seconds[row["robot_id"]][row["status"]] = float(row["seconds"])
    return seconds
