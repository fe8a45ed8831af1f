"""The rollups give the answers the readings give: buckets from minutes (the database's continuous aggregate),
daily activity and distances from quarter hours (the service's pass). Random readings, late ones, refreshes and
passes in between."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.fleet import queries as fleet_sql
from app.fleet import store as fleet
from app.platform.settings import Settings, replace_settings
from app.rollups import store as rollups
from app.telemetry import queries as telemetry_sql
from app.telemetry import store as telemetry
from tests.support.builders import reading
from tests.support.database import refresh_minutes

NOW = datetime.now(UTC).replace(microsecond=0)
# The readings in the aggregate's materialized minutes: those before its last refresh's end (a refresh stores
# minutes; the view adds later ones from the readings).
MATERIALIZED = (
    "SELECT coalesce(sum(readings), 0) FROM telemetry_1m WHERE minute < (SELECT refreshed_to FROM rollup_state)"
)
STATUSES = ["idle", "moving", "working", "charging", "error", None]
ROBOTS = ["R-a", "R-b"]
ZONES = ["UTC", "Europe/Paris", "Asia/Kolkata", "America/St_Johns"]  # +5:30 and -3:30: minutes, not hours
GAP_S = 300  # the status gap the passes here roll up with


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The server's own passes only at its start: the tests run theirs, and one with another gap must not be undone
    by the server's in between."""
    return replace_settings(settings, rollup_interval_ms=3_600_000)


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
        raw = await pool.fetch(telemetry_sql.SELECT_BUCKETS, *args)
        async with pool.acquire() as conn:
            rolled = await telemetry.fetch_rolled_up_buckets(conn, *args)
        assert sum(r["readings"] for r in raw) > 0
        same(raw, rolled)
    await compare_fleet_questions(pool, rng)


async def compare_fleet_questions(pool: asyncpg.Pool, rng: random.Random) -> None:
    """Daily activity and distances, from fleet's choice (the quarter hours once rolled up) and from the readings
    alone: ranges that start and end inside periods, run past now, or are local days."""
    now = datetime.now(UTC)
    for _ in range(10):
        since = NOW - timedelta(days=3, minutes=rng.choice([0, 15, 61]), seconds=rng.choice([0, 7, 899]))
        until = rng.choice([NOW - timedelta(hours=30, seconds=rng.uniform(0, 900)), NOW + timedelta(minutes=40)])
        raw_distances = await pool.fetch(fleet_sql.SELECT_DISTANCES, since, until)
        distances = await fleet.fetch_distances(pool, since, until)
        assert [(r, n) for r, n, _ in distances] == [(r["robot_id"], r["readings"]) for r in raw_distances]
        for (_, _, metres), raw in zip(distances, raw_distances, strict=True):
            assert metres == pytest.approx(raw["metres"], rel=1e-9)
        assert sum(n for _, n, _ in distances) > 0
        assert all(type(n) is int and type(m) is float for _, n, m in distances)  # as the API encodes them
        raw_seconds = await pool.fetch(fleet_sql.SELECT_STATUS_SECONDS, since, until, GAP_S, now)
        seconds = await fleet.fetch_status_seconds(pool, since, until, GAP_S, now)
        assert {r["robot_id"] for r in raw_seconds} == set(seconds)
        for row in raw_seconds:
            assert seconds[row["robot_id"]][row["status"]] == pytest.approx(float(row["seconds"]), rel=1e-9, abs=1e-6)
        assert sum(len(per_status) for per_status in seconds.values()) == len(raw_seconds)


async def test_rolled_up_buckets_equal_the_readings(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    rng = random.Random(11)
    await post_batches(client, rng, NOW - timedelta(days=3), 24, 1500)
    keys = {r["robot_id"]: r["robot_key"] for r in await conn.fetch("SELECT robot_id, robot_key FROM robots")}
    await compare(pool, rng, keys)  # nothing rolled up yet: all from the readings
    await refresh_minutes(pool)
    first = await rollups.roll_up_stored(pool, GAP_S)  # everything stored until now
    assert first is not None
    assert await conn.fetchval(MATERIALIZED) == 1500
    await refresh_minutes(pool)  # again: a refresh can run twice
    assert await conn.fetchval(MATERIALIZED) == 1500
    await compare(pool, rng, keys)
    # Late readings into minutes already materialized, fresh ones, and a replay; compared before and after.
    await post_batches(client, rng, NOW - timedelta(days=3), 72, 600)
    await post_batches(client, rng, NOW - timedelta(hours=2), 2, 300)
    assert await conn.fetchval(MATERIALIZED) < 2400
    await compare(pool, rng, keys)
    await refresh_minutes(pool)
    second = await rollups.roll_up_stored(pool, GAP_S)
    assert second is not None and second > first
    await compare(pool, rng, keys)
    assert await conn.fetchval(MATERIALIZED) == 2400
    period_readings = "SELECT sum(idle + moving + working + charging + error) FROM telemetry_15m"
    with_status = 2400 - await conn.fetchval("SELECT count(*) FROM telemetry WHERE status IS NULL")
    assert await conn.fetchval(period_readings) == with_status
    # A pass with nothing new changes nothing.
    periods = await conn.fetch("SELECT * FROM telemetry_15m ORDER BY robot_key, period")
    await rollups.roll_up_stored(pool, GAP_S)
    assert await conn.fetch("SELECT * FROM telemetry_15m ORDER BY robot_key, period") == periods
    # Another status gap: the quarter hours are rolled up again with it, and answer for it alone.
    await rollups.roll_up_stored(pool, 60)
    assert await conn.fetchval("SELECT status_gap_s FROM rollup_state") == 60
    changed = await conn.fetch("SELECT * FROM telemetry_15m ORDER BY robot_key, period")
    assert [p["idle_s"] for p in changed] != [p["idle_s"] for p in periods]
    # Rolled up again from every reading: the rows the passes built by appending, to float rounding.
    await rollups.roll_up_stored(pool, GAP_S)
    rebuilt = await conn.fetch("SELECT * FROM telemetry_15m ORDER BY robot_key, period")
    assert len(rebuilt) == len(periods)
    for again, before in zip(rebuilt, periods, strict=True):
        assert dict(again) == {k: pytest.approx(v, rel=1e-12) if type(v) is float else v for k, v in before.items()}
    # The watermark alone reset: the quarter hours are rolled up again from every reading, nothing counted twice.
    await conn.execute("UPDATE rollup_state SET rolled_up_xid = NULL")
    await rollups.roll_up_stored(pool, GAP_S)
    assert await conn.fetchval(period_readings) == with_status


async def test_buckets_equal_the_readings_while_refreshes_and_writes_run(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    """Refreshes committing while queries run and late readings arrive: each answer equals the readings' in its
    snapshot. (Once, a refresh running during the first comparison gave a day of 439 readings 0: the query then
    read the aggregate's real-time view, whose watermark is the catalogue's. It is bounded by the refresh's own
    record now, read in the query's snapshot.)"""
    rng = random.Random(17)
    await post_batches(client, rng, NOW - timedelta(days=3), 24, 600)
    robot_key = await conn.fetchval("SELECT robot_key FROM robots WHERE robot_id = 'R-a'")
    args = (robot_key, timedelta(hours=24), "UTC", NOW - timedelta(days=4), NOW)
    done = asyncio.Event()
    refreshes = 0

    async def refresh_and_write() -> None:
        nonlocal refreshes
        while not done.is_set():
            await refresh_minutes(pool)
            refreshes += 1
            await post_batches(client, rng, NOW - timedelta(days=3), 24, 50)

    churn = asyncio.create_task(refresh_and_write())
    try:
        compared = 0
        while compared < 40 or refreshes < 4:
            compared += 1
            async with pool.acquire() as reader, rollups.snapshot(reader) as state:
                rolled = await telemetry.fetch_buckets_in_snapshot(reader, state, *args)
                raw = await reader.fetch(telemetry_sql.SELECT_BUCKETS, *args)
            same(raw, rolled)
    finally:
        done.set()
        await churn
    assert await conn.fetchval(MATERIALIZED) >= 600 + 3 * 50  # refreshes did run in between


async def test_the_api_answers_hour_buckets_from_the_rollup(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    rng = random.Random(5)
    await post_batches(client, rng, NOW - timedelta(hours=30), 24, 400)
    await refresh_minutes(pool)
    since, until = (NOW - timedelta(days=2)).replace(minute=0, second=0), NOW.replace(second=0)
    params = {"bucket": "1h", "since": since.isoformat(), "until": until.isoformat(), "tz": "Asia/Kolkata"}
    answer = (await client.get("/telemetry/R-a", params=params)).json()
    # The same statement without the rollup, through the plain bucket query: equal, bucket by bucket.
    robot_key = await conn.fetchval("SELECT robot_key FROM robots WHERE robot_id = 'R-a'")
    raw = await pool.fetch(telemetry_sql.SELECT_BUCKETS, robot_key, timedelta(hours=1), "Asia/Kolkata", since, until)
    assert [b["readings"] for b in answer["buckets"]] == [r["readings"] for r in raw]
    assert [b["battery_level_min"] for b in answer["buckets"]] == [r["battery_min"] for r in raw]
    assert answer["buckets"][0]["start"].endswith("+05:30")
    # And the answer did come from telemetry_1m: a minute altered where it is materialized shows in it.
    materialized = await conn.fetchval(
        "SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)"
        " FROM timescaledb_information.continuous_aggregates WHERE view_name = 'telemetry_1m'"
    )
    await conn.execute(
        f"UPDATE {materialized} SET battery_min = -1 WHERE robot_key = $1 AND minute = "
        f"(SELECT min(minute) FROM {materialized} WHERE robot_key = $1 AND minute >= $2)",
        robot_key,
        since,
    )
    altered = (await client.get("/telemetry/R-a", params=params)).json()
    assert min(b["battery_level_min"] for b in altered["buckets"] if b["readings"]) == -1
    # Narrower than an hour, or minutes that are not whole: from the readings.
    narrow = (await client.get("/telemetry/R-a", params=params | {"bucket": "30m"})).json()
    assert min(b["battery_level_min"] for b in narrow["buckets"] if b["readings"]) >= 0


async def test_the_api_answers_daily_activity_and_distances_from_the_quarter_hours(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection, settings: Settings
) -> None:
    rng = random.Random(8)
    day = (NOW - timedelta(days=2)).date()
    await post_batches(client, rng, NOW - timedelta(days=3), 72, 900)
    await rollups.roll_up_stored(pool, settings.query.max_status_gap_s)
    params = {"day": day.isoformat(), "tz": "Asia/Kolkata"}
    before = (await client.get("/fleet/daily-activity", params=params)).json()["robots"]
    assert before and all(sum(robot["hours"].values()) > 0 for robot in before)
    since, until = NOW - timedelta(days=2, seconds=7), NOW - timedelta(days=1)
    span = {"since": since.isoformat(), "until": until.isoformat()}
    metres = {d["robot_id"]: d["metres"] for d in (await client.get("/fleet/distance", params=span)).json()["robots"]}
    # The answers did come from telemetry_15m: a period altered there shows in them.
    await conn.execute("UPDATE telemetry_15m SET idle = idle + 1, idle_s = idle_s + 7200, metres = metres + 5000")
    after = (await client.get("/fleet/daily-activity", params=params)).json()["robots"]
    hours = {robot["robot_id"]: robot["hours"].get("idle", 0) for robot in before}
    assert all(robot["hours"]["idle"] > hours[robot["robot_id"]] + 2 for robot in after)
    altered = (await client.get("/fleet/distance", params=span)).json()["robots"]
    assert all(d["metres"] > metres[d["robot_id"]] + 5000 for d in altered)


async def test_a_pass_never_passes_a_transaction_still_running(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection, database_url: str
) -> None:
    """A flush that began before a pass and commits after it, with an earlier stored_at than the pass's readings:
    the watermark stays below it, so the next pass rolls it up and nothing is lost (a settle time took this on
    trust)."""
    rng = random.Random(3)
    await post_batches(client, rng, NOW - timedelta(days=3), 72, 250)
    slow = await asyncpg.connect(database_url)
    try:
        robot_key = await conn.fetchval("SELECT robot_key FROM robots WHERE robot_id = 'R-a'")
        writing = slow.transaction()
        await writing.start()
        insert = "INSERT INTO telemetry (robot_key, time, latitude, longitude, battery_level) VALUES ($1, $2, 1, 2, 9)"
        await slow.execute(insert, robot_key, NOW - timedelta(hours=2, seconds=1))
        await post_batches(client, rng, NOW - timedelta(days=3), 72, 250)  # committed after it began
        await refresh_minutes(pool)
        mark = await rollups.roll_up_stored(pool, GAP_S)
        assert mark is not None
        position = await slow.fetchval("SELECT txid_current()")
        assert position >= mark
        assert position >= await conn.fetchval("SELECT refreshed_xid FROM rollup_state")
        assert await conn.fetchval(MATERIALIZED) == 500
        await writing.commit()
    finally:
        await slow.close()
    keys = {r["robot_id"]: r["robot_key"] for r in await conn.fetch("SELECT robot_id, robot_key FROM robots")}
    await compare(pool, rng, keys)  # counted from the readings: in a minute stored since the refresh
    await refresh_minutes(pool)
    await rollups.roll_up_stored(pool, GAP_S)
    assert await conn.fetchval(MATERIALIZED) == 501
    keys = {r["robot_id"]: r["robot_key"] for r in await conn.fetch("SELECT robot_id, robot_key FROM robots")}
    await compare(pool, rng, keys)


async def test_readings_stored_beside_a_replay_are_rolled_up(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    """One request with 1 replayed and 50 new readings goes through the staging table: the 50 get their commit
    position and stored_at like any other, and every rollup answer counts them."""
    first = reading("R-a", NOW - timedelta(hours=2))
    assert (await client.post("/telemetry", json=first)).status_code == 200
    fresh = [reading("R-a", NOW - timedelta(hours=2) + timedelta(seconds=s), battery_level=50) for s in range(1, 51)]
    answer = await client.post("/telemetry", json=[first, *fresh])
    assert answer.json() == {"accepted": 50, "duplicates": 1}
    assert await conn.fetchval("SELECT count(*) FROM telemetry WHERE stored_at IS NULL OR stored_xid IS NULL") == 0
    await refresh_minutes(pool)
    assert await conn.fetchval(MATERIALIZED) == 51
    hour = (NOW - timedelta(hours=2)).replace(minute=0, second=0)
    params = {"bucket": "1h", "since": hour.isoformat(), "until": (hour + timedelta(hours=2)).isoformat()}
    buckets = (await client.get("/telemetry/R-a", params=params)).json()["buckets"]
    assert sum(b["readings"] for b in buckets) == 51
