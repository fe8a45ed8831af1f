"""Small builders of readings, and counts of what is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg

from app.model.reading import Location, Reading, Row, to_row

SEED: dict[str, Any] = {
    "robot_id": "R2-D2",
    "location": {"latitude": 37.1, "longitude": -122.3},
    "battery_level": 87.5,
}


def reading(robot_id: str = "R2-D2", at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**SEED, "robot_id": robot_id, **fields}
    if at is not None:
        body["timestamp"] = at.isoformat()
    return body


def series(robot_id: str, count: int, start: datetime | None = None, step_s: float = 1.0) -> list[dict[str, Any]]:
    """``count`` readings one ``step_s`` apart, ending before now."""
    first = start or datetime.now(UTC) - timedelta(seconds=count * step_s + 60)
    return [reading(robot_id, first + timedelta(seconds=i * step_s), seq=i) for i in range(count)]


async def count_rows(conn: asyncpg.Connection) -> tuple[int, int]:
    """(readings stored, robots registered)."""
    telemetry = await conn.fetchval("SELECT count(*) FROM telemetry")
    robots = await conn.fetchval("SELECT count(*) FROM robots")
    return int(telemetry), int(robots)


def make_row(robot_id: str, at: datetime, *, status: str | None = "idle", battery_level: float = 50.0) -> Row:
    """A row as the decoder would build it, for tests that drive the ingest buffer directly."""
    reading = Reading(robot_id=robot_id, battery_level=battery_level, location=Location(1.0, 2.0))
    reading.status = cast(Any, status)  # a test may pass a value the database refuses
    return to_row(reading, at, None)
