"""The per-minute rollup gives the buckets the readings give: random readings, late ones, passes in between."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.db import rollups, sql, telemetry
from tests.support.builders import reading

NOW = datetime.now(UTC).replace(microsecond=0)
STATUSES = ["idle", "moving", "working", "charging", "error", None]
ROBOTS = ["R-a", "R-b"]
ZONES = ["UTC", "Europe/Paris", "Asia/Kolkata", "America/St_Johns"]  # +5:30 and -3:30: minutes, not hours


def random_reading(rng: random.Random, robot_id: str, at: datetime) -> dict[str, Any]:
    extra: dict[str, Any] = {"battery_level": round(rng.uniform(1, 100), 2), "status": rng.choice(STATUSES)}
    if rng.random() < 0.7:
        extra["battery_voltage"] = round(rng.uniform(20, 30), 3)
    if rng.random() < 0.2:  # indoors: a pose and no location
        extra["pose"] = {"frame": "map", "x": rng.uniform(-50, 50), "y": rng.uniform(-50, 50)}
        extra["location"] = None
    else:
        extra["location"] = {"latitude": rng.uniform(37, 38), "longitude": rng.uniform(-123, -122)}
    return reading(robot_id, at, **extra)


async def post_batches(client: httpx.AsyncClient, rng: random.Random, start: datetime, hours: float, n: int) -> None:
    readings = [
        random_reading(rng, rng.choice(ROBOTS), start + timedelta(seconds=rng.uniform(0, hours * 3600)))
        for _ in range(n)
    ]
    for i in range(0, n, 250):
        response = await client.post("/telemetry", json=readings[i : i + 250])
        assert response.status_code == 200, response.text


def same(raw: list[asyncpg.Record], rolled: list[asyncpg.Record]) -> None:
    assert len(raw) == len(rolled)
    for r, s in zip(raw, rolled, strict=True):
        for column in r.keys():
            if column in ("battery_avg", "voltage_avg") and r[column] is not None:
                assert s[column] == pytest.approx(r[column], rel=1e-12), (column, r["bucket"])
            else:
                assert s[column] == r[column], (column, r["bucket"])


async def compare(pool: asyncpg.Pool, rng: random.Random, keys: dict[str, int]) -> None:
    for _ in range(12):
        robot_key = keys[rng.choice(ROBOTS)]
        width = timedelta(hours=rng.choice([1, 2, 24]))
        zone = rng.choice(ZONES)
        since = NOW - timedelta(days=4) + timedelta(seconds=rng.choice([0, 17, 60, 3599]))
        until = NOW + timedelta(seconds=rng.choice([0, 1, 45]))
        args = (robot_key, width, zone, since, until)
        raw = await pool.fetch(sql.SELECT_BUCKETS, *args)
        async with pool.acquire() as conn:
            rolled = await telemetry.fetch_rolled_up_buckets(conn, *args)
        assert sum(r["readings"] for r in raw) > 0
        same(raw, rolled)


async def test_rolled_up_buckets_equal_the_readings(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    rng = random.Random(11)
    await post_batches(client, rng, NOW - timedelta(days=3), 24, 1500)
    keys = {r["robot_id"]: r["robot_key"] for r in await conn.fetch("SELECT robot_id, robot_key FROM robots")}
    await compare(pool, rng, keys)  # nothing rolled up yet: all from the readings
    # A pass leaves out what was stored less than settle ago (a flush that began earlier may still commit).
    assert await rollups.roll_up_stored(pool, timedelta(hours=1)) is not None
    assert await conn.fetchval("SELECT count(*) FROM telemetry_1m") == 0
    first = await rollups.roll_up_stored(pool, timedelta(0))  # everything stored until now
    assert first is not None
    assert await conn.fetchval("SELECT sum(readings) FROM telemetry_1m") == 1500
    assert await rollups.roll_up_stored(pool, timedelta(0)) is not None  # again: a pass can run twice
    assert await conn.fetchval("SELECT sum(readings) FROM telemetry_1m") == 1500
    await compare(pool, rng, keys)
    # Late readings into minutes already rolled up, fresh ones, and a replay; compared before and after a pass.
    await post_batches(client, rng, NOW - timedelta(days=3), 72, 600)
    await post_batches(client, rng, NOW - timedelta(hours=2), 2, 300)
    await compare(pool, rng, keys)
    second = await rollups.roll_up_stored(pool, timedelta(0))
    assert second is not None and second > first
    await compare(pool, rng, keys)
    assert await conn.fetchval("SELECT sum(readings) FROM telemetry_1m") == 2400
    # A pass with nothing new changes nothing.
    before = await conn.fetch("SELECT * FROM telemetry_1m ORDER BY robot_key, minute")
    await rollups.roll_up_stored(pool, timedelta(0))
    assert await conn.fetch("SELECT * FROM telemetry_1m ORDER BY robot_key, minute") == before


async def test_the_api_answers_hour_buckets_from_the_rollup(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    rng = random.Random(5)
    await post_batches(client, rng, NOW - timedelta(hours=30), 24, 400)
    await rollups.roll_up_stored(pool, timedelta(0))
    since, until = (NOW - timedelta(days=2)).replace(minute=0, second=0), NOW.replace(second=0)
    params = {"bucket": "1h", "since": since.isoformat(), "until": until.isoformat(), "tz": "Asia/Kolkata"}
    answer = (await client.get("/telemetry/R-a", params=params)).json()
    # The same statement without the rollup, through the plain bucket query: equal, bucket by bucket.
    robot_key = await conn.fetchval("SELECT robot_key FROM robots WHERE robot_id = 'R-a'")
    raw = await pool.fetch(sql.SELECT_BUCKETS, robot_key, timedelta(hours=1), "Asia/Kolkata", since, until)
    assert [b["readings"] for b in answer["buckets"]] == [r["readings"] for r in raw]
    assert [b["battery_level_min"] for b in answer["buckets"]] == [r["battery_min"] for r in raw]
    assert answer["buckets"][0]["start"].endswith("+05:30")
    # And the answer did come from telemetry_1m: a minute altered there shows in it.
    await conn.execute(
        "UPDATE telemetry_1m SET battery_min = -1 WHERE robot_key = $1 AND minute = "
        "(SELECT min(minute) FROM telemetry_1m WHERE robot_key = $1 AND minute >= $2)",
        robot_key,
        since,
    )
    altered = (await client.get("/telemetry/R-a", params=params)).json()
    assert min(b["battery_level_min"] for b in altered["buckets"] if b["readings"]) == -1
    # Narrower than an hour, or minutes that are not whole: from the readings.
    narrow = (await client.get("/telemetry/R-a", params=params | {"bucket": "30m"})).json()
    assert min(b["battery_level_min"] for b in narrow["buckets"] if b["readings"]) >= 0
