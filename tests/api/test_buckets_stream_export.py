"""Downsampled history (bucket edges, DST, empty ranges, bad parameters), the live stream and CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from statistics import mean
from urllib.parse import quote
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import msgspec
import pytest

from app.model.errors import ErrorKind
from app.platform.settings import Settings, replace_settings
from tests.support.builders import count_rows, reading, series
from tests.support.problems import assert_problem
from tests.support.servers import live_api, serve_in_process
from tests.support.sse import sse_events

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
PARIS = ZoneInfo("Europe/Paris")


async def test_minute_buckets_match_a_plain_computation(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    start = NOW - timedelta(minutes=30)
    readings = [
        reading(
            "B1",
            start + timedelta(seconds=10 * i),
            battery_level=float(100 - i),
            battery_voltage=20 + i / 100,
            location={"latitude": 10 + i / 1000, "longitude": 20.0},
            status="moving" if i % 3 else "idle",
        )
        for i in range(60)  # ten minutes, six readings a minute, the first exactly on a bucket edge
    ]
    await client.post("/telemetry/", json=readings)
    params = {"bucket": "1m", "since": start.isoformat(), "until": (start + timedelta(minutes=10)).isoformat()}
    body = (await client.get("/telemetry/B1", params=params)).json()
    assert body["bucket"] == "1m" and body["tz"] == "UTC"
    buckets = body["buckets"]
    assert len(buckets) == 10
    for minute, bucket in enumerate(buckets):
        members = readings[minute * 6 : minute * 6 + 6]
        levels = [float(r["battery_level"]) for r in members]
        assert datetime.fromisoformat(bucket["start"]) == start + timedelta(minutes=minute)
        assert bucket["readings"] == 6
        assert (bucket["battery_level_min"], bucket["battery_level_max"]) == (min(levels), max(levels))
        assert bucket["battery_level_avg"] == pytest.approx(mean(levels))
        assert bucket["last_location"] == members[-1]["location"]
        statuses = [r["status"] for r in members]
        assert bucket["status_share"] == {s: round(statuses.count(s) / 6, 4) for s in set(statuses)}
        assert bucket["top_status"] == "moving"
    # An until on a bucket edge excludes the reading standing on it.
    cut = (
        await client.get("/telemetry/B1", params=params | {"until": (start + timedelta(minutes=1)).isoformat()})
    ).json()
    assert [b["readings"] for b in cut["buckets"]] == [6]


async def test_empty_range_and_bad_parameters(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    await client.post("/telemetry/", json=series("B2", 5))
    day = (NOW - timedelta(days=20)).replace(minute=30)  # half past: the first and last hours are cut
    empty = await client.get(
        "/telemetry/B2",
        params={"bucket": "1h", "since": day.isoformat(), "until": (day + timedelta(days=1)).isoformat()},
    )
    # Every bucket of the range is there, empty ones included: 25, since the range starts and ends mid-hour.
    empty_buckets = empty.json()["buckets"]
    assert len(empty_buckets) == 25 and all(b["readings"] == 0 for b in empty_buckets)
    default_range = (await client.get("/telemetry/B2", params={"bucket": "1h"})).json()
    assert sum(b["readings"] for b in default_range["buckets"]) == 5
    for params, kind in (
        ({"bucket": "7x"}, ErrorKind.BAD_BUCKET),
        ({"bucket": "0m"}, ErrorKind.BAD_BUCKET),
        ({"bucket": "1m", "tz": "Mars/Olympus"}, ErrorKind.BAD_ZONE),
        ({"bucket": "1s", "since": (NOW - timedelta(days=29)).isoformat()}, ErrorKind.BAD_BUCKET),  # over the cap
        (
            {"bucket": "1m", "since": NOW.isoformat(), "until": (NOW - timedelta(hours=1)).isoformat()},
            ErrorKind.BAD_RANGE,
        ),
        ({"bucket": "1h", "until": "0001-01-01T00:00:00Z"}, ErrorKind.BAD_RANGE),  # default start before year 1
    ):
        assert_problem(await client.get("/telemetry/B2", params=params), kind)
    assert_problem(await client.get("/telemetry/nobody", params={"bucket": "1m"}), ErrorKind.UNKNOWN_ROBOT)


async def test_day_buckets_follow_local_days_across_dst(settings: Settings, conn: asyncpg.Connection) -> None:
    # Paris left summer time on 2026-10-25: that local day lasts 25 hours. Older than the default window.
    wide = replace_settings(settings, max_past_s=400 * 86_400)
    first = datetime(2026, 10, 24, tzinfo=PARIS)
    hourly = [reading("DST", first.astimezone(UTC) + timedelta(hours=h)) for h in range(49)]
    async with serve_in_process(wide) as client:
        await client.post("/telemetry/", json=hourly)
        params = {
            "bucket": "1d",
            "tz": "Europe/Paris",
            "since": first.isoformat(),
            "until": datetime(2026, 10, 26, tzinfo=PARIS).isoformat(),
        }
        body = (await client.get("/telemetry/DST", params=params)).json()
    starts = [datetime.fromisoformat(b["start"]) for b in body["buckets"]]
    assert starts == [datetime(2026, 10, 24, tzinfo=PARIS), datetime(2026, 10, 25, tzinfo=PARIS)]
    assert [b["readings"] for b in body["buckets"]] == [24, 25]


async def test_stream_pushes_readings_only_after_commit(settings: Settings, conn: asyncpg.Connection) -> None:
    async with live_api(settings) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with http.stream("GET", "/telemetry/stream", params={"robot_id": "S1"}) as stream:
            events = sse_events(stream)
            assert await anext(events) == {"comment": "subscribed"}
            assert await anext(events) == {"retry": "2000"}  # how long EventSource waits to reconnect
            await http.post("/telemetry/", json=[reading("other", NOW), reading("S1", NOW, seq=7)])
            event = await asyncio.wait_for(anext(events), timeout=5)
            # When the event arrives, the row is already visible to any other connection.
            stored = await conn.fetchval(
                "SELECT count(*) FROM telemetry t JOIN robots r USING (robot_key) WHERE r.robot_id = 'S1'"
            )
    assert event["event"] == "reading"
    data = msgspec.json.decode(event["data"])
    assert (data["robot_id"], data["seq"]) == ("S1", 7)
    assert datetime.fromisoformat(data["timestamp"]) == NOW
    assert stored == 1


async def test_slow_subscriber_is_cut_off_without_slowing_ingest(settings: Settings, conn: asyncpg.Connection) -> None:
    small = replace_settings(settings, stream_queue_size=3)
    async with live_api(small) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with http.stream("GET", "/telemetry/stream") as stream:
            events = sse_events(stream)
            assert await anext(events) == {"comment": "subscribed"}
            assert await anext(events) == {"retry": "2000"}  # how long EventSource waits to reconnect
            response = await http.post("/telemetry/", json=series("flood", 10))  # the subscriber reads nothing
            assert response.json() == {"accepted": 10, "duplicates": 0}
            rest = [e async for e in events]
    assert rest == [{"event": "overflow", "data": "fell too far behind; reconnect"}]
    assert await count_rows(conn) == (10, 1)


async def test_csv_export_round_trips(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    sent = series("CSV-1", 50)
    sent[3]["battery_voltage"] = None
    await client.post("/telemetry/", json=sent)
    response = await client.get("/telemetry/CSV-1/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="CSV-1.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 50
    for row, original in zip(rows, sent, strict=True):  # oldest first, every value as stored
        assert datetime.fromisoformat(row["timestamp"]) == datetime.fromisoformat(str(original["timestamp"]))
        assert row["robot_id"] == "CSV-1"
        assert float(row["latitude"]) == original["location"]["latitude"]
        assert int(row["seq"]) == original["seq"]
    assert rows[3]["battery_voltage"] == ""
    # Re-sending what was exported is recognised reading for reading: the timestamps survived exactly.
    replay = [
        reading(
            r["robot_id"],
            datetime.fromisoformat(r["timestamp"]),
            seq=int(r["seq"]),
            location={"latitude": float(r["latitude"]), "longitude": float(r["longitude"])},
        )
        for r in rows
    ]
    assert (await client.post("/telemetry/", json=replay)).json() == {"accepted": 0, "duplicates": 50}
    ranged = await client.get(
        "/telemetry/CSV-1/export.csv", params={"since": rows[10]["timestamp"], "until": rows[20]["timestamp"]}
    )
    assert len(list(csv.DictReader(io.StringIO(ranged.text)))) == 10
    assert_problem(await client.get("/telemetry/nobody/export.csv"), ErrorKind.UNKNOWN_ROBOT)


async def test_csv_cells_that_would_run_as_formulas_are_neutralised(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    for robot_id in ("=1+1", "@SUM(1,1)", "+cmd", "-2+3"):
        frame_reading = reading(robot_id, NOW, pose={"frame": "=HYPERLINK(1)", "x": -1.5, "y": 2})
        assert (await client.post("/telemetry/", json=frame_reading)).status_code == 200
        path = "/telemetry/" + quote(robot_id, safe="") + "/export.csv"
        [row] = list(csv.DictReader(io.StringIO((await client.get(path)).text)))
        assert row["robot_id"] == "'" + robot_id and row["pose_frame"] == "'=HYPERLINK(1)"
        assert row["pose_x"] == "-1.5"  # numbers stay numbers


async def test_every_bucket_is_returned_across_an_outage(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    start = NOW - timedelta(hours=2)
    # An hour of readings every 10 s, but nothing during minutes 20-29: the robot was off.
    readings = [reading("gap", start + timedelta(seconds=s), battery_level=50) for s in range(0, 3600, 10)]
    kept = [
        r for r in readings if not 20 * 60 <= (datetime.fromisoformat(r["timestamp"]) - start).total_seconds() < 30 * 60
    ]
    await client.post("/telemetry/", json=kept)
    params = {"bucket": "1m", "since": start.isoformat(), "until": (start + timedelta(hours=1)).isoformat()}
    buckets = (await client.get("/telemetry/gap", params=params)).json()["buckets"]
    assert len(buckets) == 60
    assert [datetime.fromisoformat(b["start"]) for b in buckets] == [start + timedelta(minutes=m) for m in range(60)]
    empty = [b for b in buckets if b["readings"] == 0]
    assert len(empty) == 10
    assert all(b["battery_level_avg"] is None and b["last_location"] is None and b["status_share"] == {} for b in empty)
    assert all(b["readings"] == 6 for b in buckets if b not in empty)


async def test_bucket_starts_carry_the_zone_offset(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    await client.post("/telemetry/", json=reading("tokyo", NOW - timedelta(hours=1)))
    params = {"bucket": "1d", "tz": "Asia/Tokyo"}
    [*_, last] = (await client.get("/telemetry/tokyo", params=params)).json()["buckets"]
    assert last["start"].endswith("T00:00:00+09:00"), last["start"]


async def test_a_reconnecting_subscriber_resumes_without_a_gap(settings: Settings, conn: asyncpg.Connection) -> None:
    def ids_of(events: list[dict[str, str]]) -> list[tuple[str, int]]:
        return [(d["robot_id"], d["seq"]) for d in (msgspec.json.decode(e["data"]) for e in events)]

    async def readings_from(events: AsyncIterator[dict[str, str]], count: int) -> list[dict[str, str]]:
        got: list[dict[str, str]] = []
        while len(got) < count:
            event = await asyncio.wait_for(anext(events), timeout=5)
            if event.get("event") in ("reading", "gap"):
                got.append(event)
        return got

    first = [reading("R1", NOW - timedelta(seconds=3 - i), seq=i) for i in range(3)]
    missed = [reading("R1", NOW + timedelta(seconds=i), seq=10 + i) for i in range(2)]
    async with live_api(settings) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with http.stream("GET", "/telemetry/stream") as stream:
            events = sse_events(stream)
            await http.post("/telemetry/", json=list(reversed(first)))  # sent newest first; streamed in order
            seen = await readings_from(events, 3)
        assert ids_of(seen) == [("R1", 0), ("R1", 1), ("R1", 2)]
        assert all(e["id"] for e in seen) and len({e["id"] for e in seen}) == 3
        await http.post("/telemetry/", json=missed)  # while nobody listens
        # Reconnect after the second event: the third, then what was missed, then live readings, once each.
        resume = {"Last-Event-ID": seen[1]["id"]}
        async with http.stream("GET", "/telemetry/stream", headers=resume) as stream:
            events = sse_events(stream)
            replayed = await readings_from(events, 3)
            await http.post("/telemetry/", json=reading("R1", NOW + timedelta(seconds=5), seq=20))
            live = await readings_from(events, 1)
        assert ids_of(replayed + live) == [("R1", 2), ("R1", 10), ("R1", 11), ("R1", 20)]
        # An id this API never issued is a problem, not a silent fresh start.
        bad = await http.get("/telemetry/stream", headers={"Last-Event-ID": "not-an-id"})
        assert_problem(bad, ErrorKind.BAD_CURSOR)
    # Past the resume bound the client is told that some readings are not replayed.
    strict = replace_settings(settings, stream_resume_max_readings=1)
    async with live_api(strict) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with http.stream("GET", "/telemetry/stream", headers={"Last-Event-ID": seen[0]["id"]}) as stream:
            replayed = await readings_from(sse_events(stream), 2)
    assert replayed[0]["event"] == "gap" and ids_of(replayed[1:]) == [("R1", 1)]


async def test_an_export_past_its_size_is_refused_and_frees_its_slot(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    """FLEET_MAX_EXPORT_BYTES bounds the disk one export can take: past it, 400 and the COPY stopped."""
    sent = series("BIG-1", 100)
    async with serve_in_process(replace_settings(settings, max_export_bytes=4000, exports_total=1)) as client:
        assert (await client.post("/telemetry/", json=sent)).status_code == 200
        too_big = await client.get("/telemetry/BIG-1/export.csv")
        assert "FLEET_MAX_EXPORT_BYTES" in assert_problem(too_big, ErrorKind.BAD_RANGE)["detail"]
        for _ in range(3):  # the one export slot was given back, and the read pool's connection still works
            small = await client.get("/telemetry/BIG-1/export.csv", params={"since": sent[95]["timestamp"]})
            assert small.status_code == 200, small.text
            assert len(list(csv.DictReader(io.StringIO(small.text)))) == 5
