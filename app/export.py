"""GET /telemetry/{robot_id}/export.csv: a range streamed as CSV by PostgreSQL's COPY, never held in memory."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from litestar import Request, get
from litestar.response import Stream

from app import queries
from app.db import Pool
from app.history import MAX_TIME, MIN_TIME, fetch_robot_key
from app.params import RobotIdPath, Since, Until, aware
from app.problems import problem_responses, unknown_robot
from app.state import get_services

CSV_COLUMNS = ("timestamp", "robot_id", "latitude", "longitude", "battery_level", "battery_voltage", "status", "seq")
# Chunks of COPY output waiting for a slow client: the copy pauses when this many are queued.
BUFFERED_CHUNKS = 16
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


async def stream_csv(
    pool: Pool, robot_id: str, robot_key: int, since: datetime, until: datetime
) -> AsyncIterator[bytes]:
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=BUFFERED_CHUNKS)

    async def sink(chunk: bytes | bytearray) -> None:
        await chunks.put(bytes(chunk))  # asyncpg reuses its buffer

    async def copy_out() -> None:
        try:
            async with pool.acquire() as conn:
                # asyncpg binds these values itself: COPY takes no server-side parameters.
                await conn.copy_from_query(
                    queries.EXPORT_CSV, robot_id, robot_key, since, until, output=sink, format="csv"
                )
        finally:
            await chunks.put(None)

    copy = asyncio.create_task(copy_out())
    try:
        yield (",".join(CSV_COLUMNS) + "\n").encode()
        while (chunk := await chunks.get()) is not None:
            yield chunk
        await copy  # re-raise a failed copy: the response then ends early rather than looking complete
    finally:
        copy.cancel()


@get(
    "/telemetry/{robot_id:str}/export.csv",
    responses=problem_responses(400, 404),
    tags=["live and export"],
    summary="One robot's readings in [since, until) as CSV, oldest first",
    media_type="text/csv",
)
async def export_csv(
    request: Request[Any, Any, Any], robot_id: RobotIdPath, since: Since = None, until: Until = None
) -> Stream:
    services = get_services(request)
    robot_key = await fetch_robot_key(services.pool, robot_id)
    if robot_key is None:
        raise unknown_robot(robot_id)
    start, end = aware(since) if since else MIN_TIME, aware(until) if until else MAX_TIME
    filename = _UNSAFE_FILENAME.sub("_", robot_id) + ".csv"
    return Stream(
        stream_csv(services.pool, robot_id, robot_key, start, end),
        media_type="text/csv",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
