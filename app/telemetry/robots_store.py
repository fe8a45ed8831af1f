"""The robot registry and each robot's latest state: key lookup, registration, reads and forward-only writes."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from app.model.payloads import RobotState
from app.model.reading import COLUMNS, Candidate, reading_args
from app.platform import sql
from app.platform.pool import Connection, Pool


async def ping(pool: Pool) -> None:
    await pool.fetchval(sql.PING)


async def fetch_robot_key(pool: Pool, robot_id: str) -> tuple[int, list[str]] | None:
    """The robot's key and tags, or None for a robot never seen."""
    row = await pool.fetchrow(sql.SELECT_ROBOT_KEY_AND_TAGS, robot_id)
    return None if row is None else (row["robot_key"], row["tags"])


async def register_robots(conn: Connection, robot_ids: Collection[str]) -> dict[str, int]:
    """Register the robots not yet known and return every given robot's key.

    Pass the ids sorted: concurrent registrations then lock the unique index in one order."""
    await conn.execute(sql.REGISTER_ROBOTS, list(robot_ids))
    return {record["robot_id"]: record["robot_key"] for record in await conn.fetch(sql.SELECT_ROBOT_KEYS, robot_ids)}


async def upsert_latest(pool: Pool, candidates: Iterable[Candidate]) -> None:
    """Move each robot's latest state forward to the given reading; one "newer wins" ranks lower changes nothing."""
    rows = [(*record, received_at) for _, received_at, record in candidates]
    columns = [list(column) for column in zip(*rows, strict=True)]
    if columns:  # zip(*[]) gives no columns at all
        await pool.execute(sql.UPSERT_LATEST, *columns)


async def follow_latest(conn: Connection, low: int, high: int) -> list[tuple[int, datetime]]:
    """Offer each robot's newest reading stored at positions [low, high) to its latest state (what a crashed
    process left unwritten is written here); every robot with readings there, with that reading's stored_at."""
    if high <= low:
        return []
    return [(row["robot_key"], row["stored_at"]) for row in await conn.fetch(sql.FOLLOW_LATEST, low, high)]


async def fetch_robot_states(
    pool: Pool,
    *,
    received_since: datetime,
    status: str | None = None,
    battery_below: float | None = None,
    online: bool | None = None,
    robot_id: str | None = None,
) -> list[RobotState]:
    """Latest states, filtered; a robot is online when the server received a reading from it at or after
    ``received_since`` (its own clock plays no part)."""
    rows = await pool.fetch(sql.SELECT_ROBOT_STATES, status, battery_below, received_since, online, robot_id)
    width = len(COLUMNS)
    return [
        RobotState(*reading_args(row), row[width], row[width + 1], row[width + 4], row[width + 2], row[width + 3])
        for row in rows
    ]
