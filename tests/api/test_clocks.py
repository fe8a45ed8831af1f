"""Robots' clocks are wrong in both directions; liveness and latest state go by the server's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from tests.support.builders import reading


def now() -> datetime:
    return datetime.now(UTC)


async def test_a_slow_clock_is_online_right_after_posting(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    stamped = now() - timedelta(minutes=6)  # the robot's clock is six minutes slow
    await client.post("/telemetry/", json=reading("slow", stamped))
    state = (await client.get("/robots/slow")).json()
    assert state["online"] is True
    assert datetime.fromisoformat(state["timestamp"]) == stamped  # the reading keeps the robot's time
    assert now() - datetime.fromisoformat(state["last_seen"]) < timedelta(seconds=5)  # heard from just now
    assert (await client.get("/fleet/offline")).json()["robots"] == []


async def test_a_fast_clock_does_not_freeze_the_state(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    await client.post("/telemetry/", json=reading("fast", now() + timedelta(seconds=50), battery_level=90))
    # The next reading, correctly stamped, says the robot is failing: every answer must show it at once.
    corrected = reading("fast", now(), battery_level=11, status="error")
    assert (await client.post("/telemetry/", json=corrected)).json() == {"accepted": 1, "duplicates": 0}
    state = (await client.get("/robots/fast")).json()
    assert (state["battery_level"], state["status"]) == (11, "error")
    assert [
        r["robot_id"] for r in (await client.get("/fleet/low-battery", params={"below": "20"})).json()["robots"]
    ] == ["fast"]
    assert [r["robot_id"] for r in (await client.get("/robots", params={"status": "error"})).json()["robots"]] == [
        "fast"
    ]


async def test_backfill_never_regresses_the_state(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    await client.post("/telemetry/", json=reading("bf", now() - timedelta(seconds=5), battery_level=60))
    # Store-and-forward: an hour of old readings arrives after the current one.
    old = [reading("bf", now() - timedelta(hours=1, seconds=-i), battery_level=5) for i in range(20)]
    assert (await client.post("/telemetry/", json=old)).json()["accepted"] == 20
    assert (await client.get("/robots/bf")).json()["battery_level"] == 60


async def test_first_seen_is_never_after_last_seen(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    await client.post("/telemetry/", json=reading("new", now() - timedelta(minutes=3)))
    state = (await client.get("/robots/new")).json()
    assert datetime.fromisoformat(state["first_seen"]) <= datetime.fromisoformat(state["last_seen"])


async def test_daily_activity_never_exceeds_the_elapsed_time(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    started = now()
    # 30 s of readings up to now: the last status must not run on to the 300 s gap limit, into the future.
    await client.post(
        "/telemetry/", json=[reading("act", started - timedelta(seconds=30 - i), status="working") for i in range(30)]
    )
    day = started.date().isoformat()
    [row] = (await client.get("/fleet/daily-activity", params={"day": day})).json()["robots"]
    elapsed_h = (now() - (started - timedelta(seconds=30))).total_seconds() / 3600
    assert 0 < row["hours"]["working"] <= elapsed_h
