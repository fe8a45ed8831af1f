"""Alerts across processes, on real time: two API processes never open one alert twice and judge a robot by its
newest reading whichever stored it, and alert events reach a live stream of a real server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from app.platform.settings import Settings
from tests.support.alerts import OPEN_WITHIN_S, create_rule, eventually, followed, next_event, open_alerts, post
from tests.support.servers import live_api, serve_in_process
from tests.support.sse import sse_events


async def test_alert_events_reach_the_stream(alert_settings: Settings, conn: asyncpg.Connection) -> None:
    # A real server: the in-process transport buffers a streamed response whole.
    async with live_api(alert_settings) as base, httpx.AsyncClient(base_url=base, timeout=10) as api:
        await stream_alert_events(api)


async def stream_alert_events(api: httpx.AsyncClient) -> None:
    await create_rule(api, {"kind": "status"})
    params = {"events": ["alert.opened", "alert.resolved"], "robot_id": "live"}
    async with api.stream("GET", "/telemetry/stream", params=params) as response:
        events = sse_events(response)
        assert (await anext(events)).get("comment") == "subscribed"
        await post(api, "live", status="error")
        await post(api, "other", status="error")  # another robot: filtered out
        seen = [await asyncio.wait_for(next_event(events), OPEN_WITHIN_S)]
        await post(api, "live", status="idle")
        seen.append(await asyncio.wait_for(next_event(events), OPEN_WITHIN_S))
    assert [event["event"] for event in seen] == ["alert.opened", "alert.resolved"]  # no readings: not asked for
    assert '"robot_id":"live"' in seen[0]["data"] and '"state":"resolved"' in seen[1]["data"]


async def test_two_processes_never_open_one_alert_twice(alert_settings: Settings, conn: asyncpg.Connection) -> None:
    async with serve_in_process(alert_settings) as one, serve_in_process(alert_settings) as two:
        await create_rule(one, {"kind": "battery", "below": 20})
        await asyncio.sleep(0.3)  # both engines have the rule
        for round_ in range(5):
            await asyncio.gather(*(post(api, f"race-{round_}", battery_level=5) for api in (one, two)))
        await asyncio.sleep(1.0)
    counts = await conn.fetch("SELECT robot_id, count(*) AS n FROM alerts GROUP BY robot_id ORDER BY robot_id")
    assert [(row["robot_id"], row["n"]) for row in counts] == [(f"race-{i}", 1) for i in range(5)]


async def test_two_processes_judge_a_robot_by_the_newest_reading_either_stored(
    alert_settings: Settings, conn: asyncpg.Connection
) -> None:
    async with serve_in_process(alert_settings) as one, serve_in_process(alert_settings) as two:
        await create_rule(one, {"kind": "battery", "below": 20, "margin": 5})
        now = datetime.now(UTC)
        newest, older = now - timedelta(seconds=1), now - timedelta(seconds=2)
        for i in range(10):  # the newer reading through one process, the older through the other, at once
            await asyncio.gather(
                post(one, f"race-{i}", timestamp=newest.isoformat(), battery_level=80),
                post(two, f"race-{i}", timestamp=older.isoformat(), battery_level=5),
                post(two, f"low-{i}", timestamp=newest.isoformat(), battery_level=5),
                post(one, f"low-{i}", timestamp=older.isoformat(), battery_level=80),
            )
        await followed(conn)
        opened = {r["robot_id"] for r in await conn.fetch("SELECT robot_id FROM alerts WHERE resolved_at IS NULL")}
        assert opened == {f"low-{i}" for i in range(10)}
        for api in (one, two):  # and both serve the newest as the latest state
            states = (await api.get("/robots")).json()["robots"]
            assert {s["robot_id"]: s["battery_level"] for s in states} == {
                **{f"race-{i}": 80 for i in range(10)},
                **{f"low-{i}": 5 for i in range(10)},
            }


async def test_a_stuck_robot_under_two_processes_opens_one_alert(
    alert_settings: Settings, conn: asyncpg.Connection
) -> None:
    """Each process evaluated only what it stored, with anchors of its own: one stuck robot opened and resolved
    an alert about twice a second. Now the anchors are the database's and one round runs at a time."""
    here = {"latitude": 37.1, "longitude": -122.3}
    async with serve_in_process(alert_settings) as one, serve_in_process(alert_settings) as two:
        await create_rule(one, {"kind": "stationary", "after": "1s", "within_m": 5})
        for i in range(40):
            await post((one, two)[i % 2], "stuck", status="moving", location=here)
            await asyncio.sleep(0.05)
        await eventually(lambda: open_alerts(one, "stuck"))
        for i in range(20):  # still stuck, still alternating: nothing more happens
            await post((one, two)[i % 2], "stuck", status="moving", location=here)
            await asyncio.sleep(0.05)
        await followed(conn)
    assert await conn.fetchval("SELECT count(*) FROM alerts WHERE robot_id = 'stuck'") == 1
    assert await conn.fetchval("SELECT count(*) FROM alerts WHERE resolved_at IS NOT NULL") == 0
