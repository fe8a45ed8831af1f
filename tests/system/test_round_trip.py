"""Every field of the wider reading comes back as sent, in history, /robots, the live stream and the CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import msgspec

from app.model.errors import ErrorKind
from app.platform.settings import Settings
from tests.support.problems import assert_problem
from tests.support.servers import live_api
from tests.support.sse import sse_events

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
FIELDS = {"motor_temp_c": 41.5, "cycles": 12, "estop": False, "firmware": "2.4.1"}


def outdoor(robot_id: str) -> dict[str, Any]:
    return {
        "robot_id": robot_id,
        "location": {"latitude": 48.858_37, "longitude": 2.294_481},
        "battery_level": 70.09,
        "battery_voltage": 24.61,
        "timestamp": NOW.timestamp() + 0.25,  # epoch seconds
        "status": "moving",
        "seq": 3,
        "heading": 271.3,
        "speed": 1.37,
        "altitude": 35.2,
        "accuracy": 0.8,
        "fields": FIELDS,
    }


def indoor(robot_id: str) -> dict[str, Any]:
    return {
        "robot_id": robot_id,
        "pose": {"frame": "map", "x": 12.4, "y": -3.1, "yaw": 1.57},
        "battery_level": 33.33,
        "timestamp": {"sec": int(NOW.timestamp()) + 1, "nanosec": 500_000_999},  # ROS time
    }


def path(robot_id: str) -> str:
    return quote(robot_id, safe="")  # "/" as %2F


def assert_same(stored: dict[str, Any], sent: dict[str, Any], at: datetime) -> None:
    assert datetime.fromisoformat(stored["timestamp"]) == at
    for key, value in sent.items():
        if key not in ("robot_id", "timestamp"):
            assert stored[key] == value, key


async def test_every_field_round_trips_through_every_read(settings: Settings, conn: asyncpg.Connection) -> None:
    robots = {"fleet/a/7": outdoor("fleet/a/7"), "/amr_3": indoor("/amr_3")}
    times = {"fleet/a/7": NOW + timedelta(milliseconds=250), "/amr_3": NOW + timedelta(seconds=1, microseconds=500_000)}
    async with live_api(settings) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with http.stream("GET", "/telemetry/stream") as stream:
            events = sse_events(stream)
            assert await anext(events) == {"comment": "subscribed"}
            assert await anext(events) == {"retry": "2000"}
            posted = await http.post("/telemetry/", json=list(robots.values()))
            assert posted.json() == {"accepted": 2, "duplicates": 0}
            streamed = [msgspec.json.decode((await asyncio.wait_for(anext(events), 5))["data"]) for _ in robots]

        for robot_id, sent in robots.items():
            [from_stream] = [event for event in streamed if event["robot_id"] == robot_id]
            assert_same(from_stream, sent, times[robot_id])

            history = (await http.get(f"/telemetry/{path(robot_id)}")).json()
            assert history["robot_id"] == robot_id
            [from_history] = history["readings"]
            assert_same(from_history, sent, times[robot_id])

            state = (await http.get(f"/robots/{path(robot_id)}")).json()
            assert state["robot_id"] == robot_id
            assert_same(state, sent, times[robot_id])

            export = await http.get(f"/telemetry/{path(robot_id)}/export.csv")
            [row] = list(csv.DictReader(io.StringIO(export.text)))
            assert row["robot_id"] == robot_id
            assert datetime.fromisoformat(row["timestamp"]) == times[robot_id]
            assert row["battery_level"] == str(sent["battery_level"])  # 70.09, not 70.0899963...

        listing = {state["robot_id"]: state for state in (await http.get("/robots")).json()["robots"]}
        assert listing["fleet/a/7"]["battery_level"] == 70.09
        row = dict(csv.DictReader(io.StringIO((await http.get("/telemetry/fleet%2Fa%2F7/export.csv")).text)).__next__())
        assert msgspec.json.decode(row["fields"]) == FIELDS
        assert (float(row["heading"]), float(row["speed"]), float(row["accuracy"])) == (271.3, 1.37, 0.8)
        indoor_row = next(csv.DictReader(io.StringIO((await http.get("/telemetry/%2Famr_3/export.csv")).text)))
        assert (indoor_row["latitude"], indoor_row["pose_frame"], float(indoor_row["pose_yaw"])) == ("", "map", 1.57)

        # The unencoded path is another route (or another robot): never the robot with slashes.
        assert_problem(await http.get("/robots/fleet/a/7"), ErrorKind.NOT_FOUND)
        assert_problem(await http.get("/telemetry/nobody%2Fhere"), ErrorKind.UNKNOWN_ROBOT)
    assert await conn.fetchval("SELECT count(*) FROM telemetry") == 2


async def test_seed_payload_still_works_unchanged(settings: Settings, conn: asyncpg.Connection) -> None:
    seed = {"robot_id": "R2-D2", "location": {"latitude": 37.1, "longitude": -122.3}, "battery_level": 87.5}
    async with live_api(settings) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        assert (await http.post("/telemetry", json=seed)).json() == {"accepted": 1, "duplicates": 0}
        [stored] = (await http.get("/telemetry/R2-D2")).json()["readings"]
    assert stored["location"] == seed["location"] and stored["battery_level"] == 87.5
    assert stored["pose"] is None and stored["fields"] is None


async def test_ids_with_percent_signs_stay_distinct(settings: Settings, conn: asyncpg.Connection) -> None:
    literal = "odd%2Fname"  # a robot whose id holds the three characters %2F, not a slash
    async with live_api(settings) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        await http.post("/telemetry/", json=[{**indoor(literal)}, {**indoor("odd/name")}])
        assert (await http.get(f"/robots/{path(literal)}")).json()["robot_id"] == literal
        assert (await http.get(f"/robots/{path('odd/name')}")).json()["robot_id"] == "odd/name"
