"""Latest state and the fleet questions, each checked against a plain computation over a small known dataset."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
import pytest

from app.model.errors import ErrorKind
from app.platform.settings import Settings, replace_settings
from simulator.fleet import haversine_m, metres_to_degrees
from tests.support.builders import reading
from tests.support.problems import assert_problem
from tests.support.servers import serve_in_process

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(minutes=5)
BASE = (37.4, -122.1)
STEP_LAT, _ = metres_to_degrees(100.0, 0.0, BASE[0])  # 100 m north per step

# Plain SQL over the readings themselves, independent of the registry that the API reads.
LATEST_BY_SQL = """
SELECT DISTINCT ON (t.robot_key) r.robot_id, t.time, t.latitude, t.longitude, t.battery_level, t.status::text
FROM telemetry t JOIN robots r USING (robot_key)
ORDER BY t.robot_key, t.time DESC
"""


@pytest.fixture(autouse=True)
def fresh_clock() -> None:
    """Each test's readings are placed relative to its own start, not the module's import: a suite that runs for
    minutes (on a loaded machine) would otherwise push them out of windows measured from the server's now."""
    global NOW, T0
    NOW = datetime.now(UTC).replace(microsecond=0)
    T0 = NOW - timedelta(minutes=5)


def at(lat: float, lon: float) -> dict[str, float]:
    return {"latitude": lat, "longitude": lon}


def dataset() -> list[dict[str, object]]:
    """A drives 300 m north; B stands still on low battery; C was last heard two hours ago."""
    a = [
        reading(
            "A",
            T0 + timedelta(minutes=i),
            location=at(BASE[0] + i * STEP_LAT, BASE[1]),
            battery_level=80 - i,
            status="moving" if i < 2 else "working",
        )
        for i in range(4)
    ]
    b = [reading("B", T0 + timedelta(minutes=i), location=at(*BASE), battery_level=15, status="idle") for i in range(4)]
    c = [reading("C", NOW - timedelta(hours=2), location=at(*BASE), battery_level=50, status="charging")]
    return a + b + c


async def load(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    response = await client.post("/telemetry/", json=dataset())
    assert response.json() == {"accepted": 9, "duplicates": 0}
    # Liveness goes by when the server heard from a robot: C's reading arrived just now, so make it as if C was
    # last heard two hours ago (after a read has written the latest state).
    assert (await client.get("/robots")).status_code == 200
    await conn.execute(
        "UPDATE robot_latest SET received_at = $1 FROM robots r"
        " WHERE r.robot_key = robot_latest.robot_key AND r.robot_id = 'C'",
        NOW - timedelta(hours=2),
    )


async def latest_by_sql(conn: asyncpg.Connection) -> dict[str, tuple[object, ...]]:
    return {
        r["robot_id"]: (datetime.isoformat(r["time"]), r["battery_level"], r["status"])
        for r in await conn.fetch(LATEST_BY_SQL)
    }


def as_tuple(state: dict[str, object]) -> tuple[object, ...]:
    return (datetime.fromisoformat(str(state["timestamp"])).isoformat(), state["battery_level"], state["status"])


async def test_robots_list_matches_the_readings(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    await load(client, conn)
    robots = (await client.get("/robots")).json()["robots"]
    assert [r["robot_id"] for r in robots] == ["A", "B", "C"]
    assert {r["robot_id"]: as_tuple(r) for r in robots} == await latest_by_sql(conn)
    assert {r["robot_id"]: r["online"] for r in robots} == {"A": True, "B": True, "C": False}
    a = robots[0]
    assert a["location"]["latitude"] == pytest.approx(BASE[0] + 3 * STEP_LAT)
    assert datetime.fromisoformat(a["first_seen"]) <= datetime.now(UTC)
    one = (await client.get("/robots/A")).json()
    assert one == a


async def test_robot_filters(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    await load(client, conn)

    async def ids(params: dict[str, str]) -> list[str]:
        response = await client.get("/robots", params=params)
        assert response.status_code == 200, response.text
        return [r["robot_id"] for r in response.json()["robots"]]

    assert await ids({"status": "idle"}) == ["B"]
    assert await ids({"battery_below": "20"}) == ["B"]
    assert await ids({"online": "false"}) == ["C"]
    assert await ids({"online": "true"}) == ["A", "B"]
    assert await ids({"stale_after": "10800", "online": "false"}) == []  # three hours: C counts as online
    assert await ids({"stale_after": "3h", "online": "false"}) == []  # the same, in the duration syntax
    assert await ids({"stale_after": "1m", "online": "false"}) == ["C"]
    # stale_after far beyond a year overflowed date arithmetic (a 500 found by schemathesis); now it is a 400.
    for bad in (
        {"status": "flying"},
        {"battery_below": "101"},
        {"stale_after": "0"},
        {"stale_after": "10" * 15},
        {"stale_after": "367d"},
        {"stale_after": "5m\n"},
        {"stale_after": "1.5h"},
    ):
        assert_problem(await client.get("/robots", params=bad), ErrorKind.BAD_PARAMETER)


async def test_unknown_robot_state_is_404(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    problem = assert_problem(await client.get("/robots/nobody"), ErrorKind.UNKNOWN_ROBOT)
    assert "nobody" in problem["detail"]


async def test_late_and_shuffled_readings_never_regress_latest(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    readings = [
        reading(f"R{i % 5}", NOW - timedelta(seconds=300 - s), battery_level=float(s % 100), seq=s)
        for s in range(200)
        for i in range(5)
    ]
    random.Random(3).shuffle(readings)
    newest_first = sorted(readings, key=lambda r: str(r["timestamp"]), reverse=True)
    # The newest readings arrive first, then the rest late, in shuffled batches sent concurrently.
    await client.post("/telemetry/", json=newest_first[:50])
    late = newest_first[50:]
    batches = [late[i : i + 37] for i in range(0, len(late), 37)]
    responses = await asyncio.gather(*(client.post("/telemetry/", json=b) for b in batches))
    assert all(r.status_code == 200 for r in responses)
    robots = (await client.get("/robots")).json()["robots"]
    assert {r["robot_id"]: as_tuple(r) for r in robots} == await latest_by_sql(conn)
    assert {r["seq"] for r in robots} == {199}
    # A reading newer than the newest does move the state forward.
    await client.post("/telemetry/", json=reading("R0", NOW, battery_level=1.0, seq=1000))
    assert (await client.get("/robots/R0")).json()["seq"] == 1000


async def test_low_battery_offline_stationary(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    await load(client, conn)
    low = (await client.get("/fleet/low-battery", params={"below": "20"})).json()["robots"]
    assert [r["robot_id"] for r in low] == ["B"]
    offline = (await client.get("/fleet/offline", params={"stale_after": "300"})).json()["robots"]
    assert [r["robot_id"] for r in offline] == ["C"]
    stationary = (await client.get("/fleet/stationary", params={"within_m": "5", "window_min": "10"})).json()["robots"]
    assert [(r["robot_id"], r["metres"], r["readings"]) for r in stationary] == [("B", 0.0, 4)]
    # A wider threshold takes in A, which drove 300 m.
    wide = (await client.get("/fleet/stationary", params={"within_m": "301", "window_min": "10"})).json()["robots"]
    assert [r["robot_id"] for r in wide] == ["A", "B"]


async def test_distance_travelled(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    await load(client, conn)
    since = (NOW - timedelta(hours=3)).isoformat()
    rows = (await client.get("/fleet/distance", params={"since": since})).json()["robots"]
    a_points = [(BASE[0] + i * STEP_LAT, BASE[1]) for i in range(4)]
    expected_a = sum(haversine_m(*p, *q) for p, q in itertools.pairwise(a_points))
    assert expected_a == pytest.approx(300.0, rel=1e-3)
    assert {r["robot_id"]: (r["readings"], r["metres"]) for r in rows} == {
        "A": (4, pytest.approx(expected_a, abs=0.01)),
        "B": (4, 0.0),
        "C": (1, 0.0),
    }
    only_recent = (
        await client.get("/fleet/distance", params={"since": (T0 + timedelta(minutes=1)).isoformat()})
    ).json()["robots"]
    assert {r["robot_id"]: r["metres"] for r in only_recent}["A"] == pytest.approx(2 * expected_a / 3, abs=0.01)
    bad = await client.get("/fleet/distance", params={"since": (NOW - timedelta(days=40)).isoformat()})
    assert_problem(bad, ErrorKind.BAD_RANGE)


async def test_extreme_coordinates_do_not_break_fleet_questions(client: httpx.AsyncClient) -> None:
    # Valid positions whose differences underflow a double when squared, and the poles: PostgreSQL raises on a
    # float underflow, and one such stored reading made every distance and stationary answer a 400.
    positions = [(4.97e-217, 0.0), (0.0, -1e-300), (90.0, 1e-200), (90.0, 0.0), (-90.0, 180.0), (-90.0, -180.0)]
    body = [
        reading("tiny", NOW - timedelta(seconds=len(positions) - i), location=at(lat, lon))
        for i, (lat, lon) in enumerate(positions)
    ]
    assert (await client.post("/telemetry", json=body)).status_code == 200
    since = (NOW - timedelta(hours=1)).isoformat()
    distances = (await client.get("/fleet/distance", params={"since": since})).json()["robots"]
    expected = sum(haversine_m(*p, *q) for p, q in itertools.pairwise(positions))  # a quarter and a half meridian
    assert expected == pytest.approx(3 * haversine_m(0.0, 0.0, 90.0, 0.0), rel=1e-9)
    assert distances == [{"robot_id": "tiny", "readings": 6, "metres": pytest.approx(expected, rel=1e-6)}]
    stationary = await client.get("/fleet/stationary", params={"within_m": "5", "window": "1h"})
    assert stationary.status_code == 200, stationary.text


async def test_daily_activity_hours(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    day = (NOW - timedelta(days=2)).date()
    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    readings = [reading("D", start + timedelta(minutes=m), status="working" if m < 60 else "idle") for m in range(120)]
    # After a 3-hour silence (not counted beyond the 300 s cap), one charging reading 10 minutes before midnight.
    readings.append(reading("D", start + timedelta(hours=13, minutes=50), status="charging"))
    await client.post("/telemetry/", json=readings)
    rows = (await client.get("/fleet/daily-activity", params={"day": day.isoformat()})).json()["robots"]
    # working: 60 one-minute steps; idle: 59 steps plus 300 s capped after the last; charging: 300 s capped.
    assert rows == [
        {
            "robot_id": "D",
            "day": day.isoformat(),
            "tz": "UTC",
            "hours": {
                "charging": pytest.approx(300 / 3600),
                "idle": pytest.approx((59 * 60 + 300) / 3600),
                "working": pytest.approx(1.0),
            },
        }
    ]
    # Tokyo's day ends at 15:00 UTC: the morning readings fall in it, the late charging one does not.
    other = (await client.get("/fleet/daily-activity", params={"day": day.isoformat(), "tz": "Asia/Tokyo"})).json()[
        "robots"
    ]
    assert [r["hours"] for r in other] == [
        {"idle": pytest.approx((59 * 60 + 300) / 3600), "working": pytest.approx(1.0)}
    ]
    bad = await client.get("/fleet/daily-activity", params={"day": day.isoformat(), "tz": "Mars/Olympus"})
    assert_problem(bad, ErrorKind.BAD_ZONE)


async def test_a_status_held_across_midnight_is_split_between_the_days(client: httpx.AsyncClient) -> None:
    day = (NOW - timedelta(days=3)).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    readings = [
        reading("M", midnight - timedelta(seconds=90), status="working"),
        reading("M", midnight + timedelta(seconds=30), status="idle"),  # working for 90 s before, 30 s after
        reading("N", midnight - timedelta(seconds=400), status="charging"),  # past the 300 s cap by midnight
        reading("N", midnight + timedelta(seconds=60), status="idle"),
    ]
    assert (await client.post("/telemetry/", json=readings)).status_code == 200

    async def hours(on: date) -> dict[str, dict[str, float]]:
        robots = (await client.get("/fleet/daily-activity", params={"day": on.isoformat()})).json()["robots"]
        return {r["robot_id"]: r["hours"] for r in robots}

    before, after = await hours(day), await hours(day + timedelta(days=1))
    assert before["M"] == {"working": pytest.approx(90 / 3600)}
    assert after["M"] == {"working": pytest.approx(30 / 3600), "idle": pytest.approx(300 / 3600)}
    assert before["N"] == {"charging": pytest.approx(300 / 3600)}
    assert after["N"] == {"idle": pytest.approx(300 / 3600)}  # nothing of the charging status carries over


async def test_query_past_the_statement_timeout_is_503(settings: Settings, conn: asyncpg.Connection) -> None:
    async with serve_in_process(settings) as client:
        batch = [reading("T0", NOW - timedelta(seconds=s)) for s in range(1, 101)]
        assert (await client.post("/telemetry/", json=batch)).status_code == 200
    strict = replace_settings(settings, query_timeout_ms=200)
    async with serve_in_process(strict) as client:
        # Held by another transaction, the table makes the query wait past its limit however fast the machine (a
        # query sized to take longer than the limit passed once TimescaleDB got faster).
        async with conn.transaction():
            await conn.execute("LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE")
            response = await client.get("/fleet/distance", params={"since": (NOW - timedelta(hours=3)).isoformat()})
    assert_problem(response, ErrorKind.QUERY_TIMEOUT)
    assert response.headers["retry-after"] == "5"


async def test_low_battery_lists_the_lowest_first_and_can_leave_offline_out(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    levels = {"low-a": 12.0, "low-b": 3.0, "low-c": 7.5}
    await client.post(
        "/telemetry/", json=[reading(r, NOW - timedelta(seconds=5), battery_level=v) for r, v in levels.items()]
    )
    listed = (await client.get("/fleet/low-battery", params={"below": "20"})).json()["robots"]
    assert [r["robot_id"] for r in listed] == ["low-b", "low-c", "low-a"]
    await conn.execute(
        "UPDATE robot_latest SET received_at = $1 FROM robots r"
        " WHERE r.robot_key = robot_latest.robot_key AND r.robot_id = 'low-b'",
        NOW - timedelta(hours=1),
    )
    online_only = (await client.get("/fleet/low-battery", params={"below": "20", "include_offline": "false"})).json()[
        "robots"
    ]
    assert [r["robot_id"] for r in online_only] == ["low-c", "low-a"]


async def test_every_robot_list_pages_the_same_way(client: httpx.AsyncClient) -> None:
    levels = {f"p{i:02}": float(i % 7) for i in range(23)}  # repeated levels: the id breaks ties across pages
    await client.post(
        "/telemetry/", json=[reading(r, NOW - timedelta(seconds=5), battery_level=v) for r, v in levels.items()]
    )

    async def walk(path: str, **params: str) -> list[str]:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = await client.get(path, params={**params, "limit": "5", **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["robots"]) <= 5
            seen += [r["robot_id"] for r in body["robots"]]
            cursor = body["next_cursor"]
            if cursor is None:
                return seen

    assert await walk("/robots") == sorted(levels)
    by_level = sorted(levels, key=lambda r: (levels[r], r))
    assert await walk("/fleet/low-battery", below="100") == by_level
    since = (NOW - timedelta(minutes=1)).isoformat()
    assert await walk("/fleet/distance", since=since) == sorted(levels)
    # One list's cursor is refused by another; a limit above the maximum is a 400 that names it.
    first = (await client.get("/robots", params={"limit": "5"})).json()["next_cursor"]
    refused = await client.get("/fleet/low-battery", params={"cursor": first})
    assert_problem(refused, ErrorKind.BAD_CURSOR)
    too_many = await client.get("/robots", params={"limit": "10001"})
    assert "10000" in assert_problem(too_many, ErrorKind.BAD_PARAMETER)["detail"]


async def test_durations_and_times_have_one_syntax(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    await load(client, conn)
    in_minutes = await client.get("/fleet/stationary", params={"within_m": "5", "window_min": "10"})
    in_duration = await client.get("/fleet/stationary", params={"within_m": "5", "window": "10m"})
    in_seconds = await client.get("/fleet/stationary", params={"within_m": "5", "window": "600"})
    assert in_minutes.json() == in_duration.json() == in_seconds.json()
    assert [r["robot_id"] for r in in_duration.json()["robots"]] == ["B"]
    for bad in ({"window": "2d"}, {"window": "10min"}, {"window": "10m", "window_min": "10"}):
        assert_problem(await client.get("/fleet/stationary", params=bad), ErrorKind.BAD_PARAMETER)
    # Times are RFC 3339; an epoch number is a unit mistake, refused on every endpoint that takes a time.
    for path, params in (
        ("/fleet/distance", {"since": "0.5"}),
        ("/fleet/distance", {"since": NOW.isoformat(), "until": "1764288000"}),
        ("/telemetry/A", {"until": "0.5"}),
        ("/telemetry/A/export.csv", {"since": "yesterday"}),
    ):
        assert_problem(await client.get(path, params=params), ErrorKind.BAD_PARAMETER)
    # Without an offset a time is UTC.
    naive = (T0 + timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    aware_utc = (T0 + timedelta(minutes=1)).isoformat()
    first = await client.get("/fleet/distance", params={"since": naive})
    assert (
        first.status_code == 200
        and first.json() == (await client.get("/fleet/distance", params={"since": aware_utc})).json()
    )
