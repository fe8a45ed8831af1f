"""The ingest contract on TimescaleDB's columnstore (migration 016): replays of converted ranges are duplicates,
late readings go into converted chunks, the unique key holds, and history reads both stores alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from tests.support.builders import count_rows, reading

OLD = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)  # in a chunk the policy would have converted


async def convert_old_chunks(conn: asyncpg.Connection) -> int:
    """What the columnstore policy does to chunks over a day old, now; how many chunks are in the columnstore."""
    await conn.execute(
        "SELECT compress_chunk(c, if_not_compressed => true)"
        " FROM show_chunks('telemetry', older_than => now() - interval '1 day') AS c"
    )
    converted: int = await conn.fetchval(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry' AND is_compressed"
    )
    return converted


async def test_replays_and_late_readings_keep_the_contract_on_the_columnstore(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    if await conn.fetchval("SHOW timescaledb.license") != "timescale":
        pytest.skip("the Apache edition has no columnstore")
    first = [reading("C1", OLD + timedelta(seconds=s), seq=s) for s in range(10)]
    assert (await client.post("/telemetry/", json=first)).json() == {"accepted": 10, "duplicates": 0}
    assert await convert_old_chunks(conn) >= 1
    # A replay of converted readings: duplicates, nothing stored twice (the fast COPY meets the unique key).
    assert (await client.post("/telemetry/", json=first)).json() == {"accepted": 0, "duplicates": 10}
    # A late reading into the converted chunk, alone and beside a replay (the staging path's ON CONFLICT).
    late = reading("C1", OLD + timedelta(seconds=30), seq=30)
    assert (await client.post("/telemetry/", json=late)).json() == {"accepted": 1, "duplicates": 0}
    mixed = [first[3], reading("C1", OLD + timedelta(seconds=31), seq=31)]
    assert (await client.post("/telemetry/", json=mixed)).json() == {"accepted": 1, "duplicates": 1}
    assert await count_rows(conn) == (12, 1)
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            "INSERT INTO telemetry (robot_key, time, battery_level)"
            " SELECT robot_key, $1, 5 FROM robots WHERE robot_id = 'C1'",
            OLD,
        )
    # History reads converted and row-store readings alike, newest first.
    since = (OLD - timedelta(minutes=1)).isoformat()
    history = (await client.get("/telemetry/C1", params={"since": since, "limit": 100})).json()["readings"]
    assert [r["seq"] for r in history] == [31, 30, *range(9, -1, -1)]
