"""POST /telemetry against a real TimescaleDB: storage, validation, idempotence, concurrency and limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.model.errors import ErrorKind
from tests.support.builders import SEED, count_rows, reading, series
from tests.support.problems import assert_problem

Client = httpx.AsyncClient
NOW = datetime.now(UTC)


async def test_seed_payload_is_stored_and_read_back(client: Client, conn: asyncpg.Connection) -> None:
    response = await client.post("/telemetry/", json=SEED)
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0}

    page = (await client.get("/telemetry/R2-D2")).json()
    [stored] = page["readings"]
    assert stored["location"] == SEED["location"]
    assert stored["battery_level"] == 87.5
    received = datetime.fromisoformat(stored["timestamp"])
    assert abs(received - datetime.now(UTC)) < timedelta(minutes=1)
    assert await count_rows(conn) == (1, 1)


async def test_path_without_trailing_slash_is_accepted(client: Client, conn: asyncpg.Connection) -> None:
    response = await client.post("/telemetry", json=reading(at=NOW))
    assert response.status_code == 200
    assert await count_rows(conn) == (1, 1)


async def test_batch_with_every_optional_field(client: Client, conn: asyncpg.Connection) -> None:
    batch = [
        reading(f"robot-{i % 7}", NOW - timedelta(seconds=i), battery_voltage=24.1, status="working", seq=i)
        for i in range(500)
    ]
    response = await client.post("/telemetry/", json=batch)
    assert response.json() == {"accepted": 500, "duplicates": 0}
    assert await count_rows(conn) == (500, 7)
    row = await conn.fetchrow(
        "SELECT t.status::text, t.battery_voltage, t.seq FROM telemetry t JOIN robots r USING (robot_key)"
        " WHERE r.robot_id = 'robot-3' ORDER BY time DESC LIMIT 1"
    )
    assert row is not None
    assert (row["status"], row["seq"]) == ("working", 3)
    assert row["battery_voltage"] == pytest.approx(24.1)


def _invalid_cases() -> list[tuple[str, Any, int]]:
    """(name, body, expected status): every validation rule, each broken once."""
    future = (NOW + timedelta(days=1)).isoformat()  # far past the 10-minute limit, however long the suite runs
    past = (NOW - timedelta(days=40)).isoformat()
    loc = SEED["location"]
    return [
        ("latitude above 90", {**SEED, "location": {**loc, "latitude": 90.01}}, 422),
        ("latitude below -90", {**SEED, "location": {**loc, "latitude": -90.01}}, 422),
        ("longitude above 180", {**SEED, "location": {**loc, "longitude": 180.5}}, 422),
        ("longitude below -180", {**SEED, "location": {**loc, "longitude": -181}}, 422),
        (
            "infinite latitude",
            b'{"robot_id":"a","location":{"latitude":1e999,"longitude":0},"battery_level":1}',
            422,
        ),
        ("NaN literal", b'{"robot_id":"a","location":{"latitude":NaN,"longitude":0},"battery_level":1}', 400),
        (
            "Infinity literal",
            b'{"robot_id":"a","location":{"latitude":0,"longitude":Infinity},"battery_level":1}',
            400,
        ),
        ("battery above 100", {**SEED, "battery_level": 100.5}, 422),
        ("battery below 0", {**SEED, "battery_level": -0.1}, 422),
        ("battery as a string", {**SEED, "battery_level": "50"}, 422),
        ("voltage negative", {**SEED, "battery_voltage": -1}, 422),
        ("voltage absurd", {**SEED, "battery_voltage": 5000}, 422),
        ("empty robot_id", {**SEED, "robot_id": ""}, 422),
        ("robot_id too long", {**SEED, "robot_id": "x" * 65}, 422),
        ("robot_id with NUL", {**SEED, "robot_id": "R2\u0000D2"}, 422),
        ("robot_id with newline", {**SEED, "robot_id": "R2\nD2"}, 422),
        ("robot_id with trailing newline", {**SEED, "robot_id": "R2D2\n"}, 422),
        ("robot_id with C1 control", {**SEED, "robot_id": "R2\u0085D2"}, 422),
        ("robot_id with a space", {**SEED, "robot_id": "R2 D2"}, 422),
        ("robot_id with NBSP", {**SEED, "robot_id": "R2\u00a0D2"}, 422),
        ("robot_id with zero-width space", {**SEED, "robot_id": "R2\u200bD2"}, 422),
        ("robot_id with bidi override", {**SEED, "robot_id": "R2\u202eD2"}, 422),
        ("robot_id full-width", {**SEED, "robot_id": "\uff32\uff12-D2"}, 422),
        ("unknown top-level field", {**SEED, "velocity": 3}, 422),
        ("heading above 360", {**SEED, "heading": 360.5}, 422),
        ("negative speed", {**SEED, "speed": -0.1}, 422),
        ("negative accuracy", {**SEED, "accuracy": -1}, 422),
        ("pose without frame", {**SEED, "pose": {"x": 1, "y": 2}}, 422),
        ("pose with empty frame", {**SEED, "pose": {"frame": "", "x": 1, "y": 2}}, 422),
        ("no location and no pose", {"robot_id": "a", "battery_level": 1, "pose": None}, 422),
        ("fields nested", {**SEED, "fields": {"a": {"b": 1}}}, 422),
        ("fields with a list", {**SEED, "fields": {"a": [1, 2]}}, 422),
        ("fields with a null", {**SEED, "fields": {"a": None}}, 422),
        ("fields with too many keys", {**SEED, "fields": {f"k{i}": i for i in range(33)}}, 422),
        ("fields too large", {**SEED, "fields": {f"k{i}": "x" * 200 for i in range(12)}}, 422),
        ("fields with a long string", {**SEED, "fields": {"a": "x" * 257}}, 422),
        ("fields with an empty key", {**SEED, "fields": {"": 1}}, 422),
        # PostgreSQL text and jsonb hold no NUL: one stored would fail the whole flush, other clients' rows too.
        ("fields key with NUL", {**SEED, "fields": {"a\u0000": 1}}, 422),
        ("fields value with NUL", {**SEED, "fields": {"a": "x\u0000y"}}, 422),
        ("pose frame with NUL", {**SEED, "pose": {"frame": "m\u0000p", "x": 1, "y": 2}}, 422),
        ("ROS time with too many nanoseconds", {**SEED, "timestamp": {"sec": 1, "nanosec": 10**9}}, 422),
        ("ROS time without nanosec", {**SEED, "timestamp": {"sec": 1}}, 422),
        ("negative epoch", {**SEED, "timestamp": -5}, 422),
        ("epoch too old", {**SEED, "timestamp": 1000.5}, 422),
        ("unknown location field", {**SEED, "location": {**loc, "altitude": 3}}, 422),
        ("missing location", {"robot_id": "a", "battery_level": 1}, 422),
        ("unknown status", {**SEED, "status": "flying"}, 422),
        ("timestamp without zone", {**SEED, "timestamp": "2026-11-28T10:00:00"}, 422),
        ("timestamp not RFC 3339", {**SEED, "timestamp": "yesterday"}, 422),
        ("timestamp too far ahead", {**SEED, "timestamp": future}, 422),
        ("timestamp too old", {**SEED, "timestamp": past}, 422),
        ("negative seq", {**SEED, "seq": -1}, 422),
        ("a number instead of a reading", b"42", 422),
        ("truncated JSON", b'{"robot_id": "R2', 400),
        ("empty body", b"", 400),
    ]


@pytest.mark.parametrize(("name", "body", "status"), _invalid_cases(), ids=[c[0] for c in _invalid_cases()])
async def test_invalid_reading_is_rejected_and_nothing_stored(
    client: Client, conn: asyncpg.Connection, name: str, body: Any, status: int
) -> None:
    # Sent inside a batch behind a valid reading too: the whole request must be refused.
    for payload in (body, [reading("valid", NOW), body] if not isinstance(body, bytes) else None):
        if payload is None:
            continue
        response = (
            await client.post("/telemetry/", content=payload, headers={"content-type": "application/json"})
            if isinstance(payload, bytes)
            else await client.post("/telemetry/", json=payload)
        )
        problem = assert_problem(response, ErrorKind.MALFORMED_BODY if status == 400 else ErrorKind.INVALID_READING)
        assert problem["errors"], problem
        if isinstance(payload, list):
            assert [e["index"] for e in problem["errors"]] == [1]
            assert problem["errors"][0]["field"].startswith("$[1]")
    assert await count_rows(conn) == (0, 0)


async def test_boundary_values_are_accepted(client: Client, conn: asyncpg.Connection) -> None:
    batch = [
        reading("edge", NOW - timedelta(days=29), location={"latitude": 90, "longitude": -180}, battery_level=0),
        reading(
            "edge",
            NOW + timedelta(seconds=50),  # within the 60 s future window
            location={"latitude": -90, "longitude": 180},
            battery_level=100,
        ),
        reading("x" * 64, NOW, battery_voltage=0, seq=0),
        reading("ünï-cödé-✓", NOW),
    ]
    response = await client.post("/telemetry/", json=batch)
    assert response.json() == {"accepted": 4, "duplicates": 0}
    assert await count_rows(conn) == (4, 3)


async def test_each_bad_reading_is_named(client: Client, conn: asyncpg.Connection) -> None:
    batch = series("r", 6)
    batch[2]["location"] = {"latitude": 100, "longitude": 0}
    batch[4]["battery_level"] = 200
    problem = (await client.post("/telemetry/", json=batch)).json()
    assert [(e["index"], e["field"]) for e in problem["errors"]] == [
        (2, "$[2].location.latitude"),
        (4, "$[4].battery_level"),
    ]
    assert await count_rows(conn) == (0, 0)


async def test_replay_is_stored_once_and_counted(client: Client, conn: asyncpg.Connection) -> None:
    batch = series("replayer", 50)
    first = await client.post("/telemetry/", json=batch)
    assert first.json() == {"accepted": 50, "duplicates": 0}
    again = await client.post("/telemetry/", json=batch)
    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": 50}
    overlapping = batch[25:] + series("replayer", 10, start=NOW - timedelta(seconds=30))
    assert (await client.post("/telemetry/", json=overlapping)).json() == {"accepted": 10, "duplicates": 25}
    assert await count_rows(conn) == (60, 1)


async def test_duplicates_inside_one_request(client: Client, conn: asyncpg.Connection) -> None:
    one = reading("twice", NOW)
    response = await client.post("/telemetry/", json=[one, one, reading("twice", NOW - timedelta(seconds=1))])
    assert response.json() == {"accepted": 2, "duplicates": 1}
    assert await count_rows(conn) == (2, 1)


async def test_concurrent_replays_store_once(client: Client, conn: asyncpg.Connection) -> None:
    batch = series("racer", 50)
    responses = await asyncio.gather(*(client.post("/telemetry/", json=batch) for _ in range(20)))
    results = [r.json() for r in responses]
    assert all(r.status_code == 200 for r in responses)
    assert sum(r["accepted"] for r in results) == 50
    assert sum(r["duplicates"] for r in results) == 50 * 19
    assert await count_rows(conn) == (50, 1)


async def test_200_concurrent_single_readings_all_stored(client: Client, conn: asyncpg.Connection) -> None:
    bodies = [reading(f"bot-{i % 40}", NOW - timedelta(milliseconds=i), seq=i) for i in range(200)]
    responses = await asyncio.gather(*(client.post("/telemetry/", json=body) for body in bodies))
    assert [r.status_code for r in responses] == [200] * 200
    assert [r.json() for r in responses] == [{"accepted": 1, "duplicates": 0}] * 200
    assert await count_rows(conn) == (200, 40)
    stored_seqs = {row["seq"] for row in await conn.fetch("SELECT seq FROM telemetry")}
    assert stored_seqs == set(range(200))


async def test_empty_batch_stores_nothing(client: Client, conn: asyncpg.Connection) -> None:
    response = await client.post("/telemetry/", json=[])
    assert response.json() == {"accepted": 0, "duplicates": 0}
    assert await count_rows(conn) == (0, 0)


async def test_nfc_and_nfd_spellings_are_one_robot(client: Client, conn: asyncpg.Connection) -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    first = await client.post("/telemetry/", json=reading(composed, NOW))
    again = await client.post("/telemetry/", json=reading(decomposed, NOW))
    assert (first.json(), again.json()) == ({"accepted": 1, "duplicates": 0}, {"accepted": 0, "duplicates": 1})
    assert await conn.fetchval("SELECT array_agg(robot_id) FROM robots") == [composed]
