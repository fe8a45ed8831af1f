"""Two API instances on one database: what either acknowledged, both serve, and a live subscriber on one sees
what was written through the other (commit notices over LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import msgspec

from app.platform.settings import Settings
from tests.support.builders import reading
from tests.support.servers import live_api
from tests.support.sse import sse_events

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)


async def collect(events: AsyncIterator[dict[str, str]], into: asyncio.Queue[dict[str, object]]) -> None:
    """Reading events into a queue, from a task of their own: a timeout on the queue leaves the stream whole."""
    async for event in events:
        if event.get("event") == "reading":
            await into.put(msgspec.json.decode(event["data"]))


async def test_two_instances_serve_every_write_and_stream_each_others(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    async with (
        live_api(settings) as url_a,
        live_api(settings) as url_b,
        httpx.AsyncClient(base_url=url_a, timeout=10) as a,
        httpx.AsyncClient(base_url=url_b, timeout=10) as b,
        a.stream("GET", "/telemetry/stream") as stream,
    ):
        readings: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        reader = asyncio.create_task(collect(sse_events(stream), readings))
        # B's commit notices reach A once A listens: send through B until one arrives (a fresh start takes ms).
        warm_up = 0
        while True:
            warm_up += 1
            await b.post("/telemetry/", json=reading("warm", NOW - timedelta(seconds=warm_up)))
            try:
                await asyncio.wait_for(readings.get(), 0.5)
                break
            except TimeoutError:
                assert warm_up < 20, "instance A never saw a commit of instance B"
        sent = []
        for i in range(40):
            body = [reading(f"r{i % 4}", NOW + timedelta(seconds=i), seq=i)]
            response = await (a if i % 2 else b).post("/telemetry/", json=body)
            assert response.json() == {"accepted": 1, "duplicates": 0}
            sent.append((f"r{i % 4}", i))
        seen: list[tuple[object, object]] = []
        while len(seen) < len(sent):
            data = await asyncio.wait_for(readings.get(), 5)
            if data["robot_id"] != "warm":
                seen.append((data["robot_id"], data["seq"]))
        reader.cancel()
        assert sorted(seen) == sorted(sent)  # each once, whichever instance took it  # type: ignore[type-var]
        # Latest state: the writer reads its own write at once; the other instance within 1 s.
        last = reading("lst", NOW + timedelta(minutes=1), battery_level=42.0)
        assert (await b.post("/telemetry/", json=last)).status_code == 200
        assert (await b.get("/robots/lst")).json()["battery_level"] == 42.0
        waited = 0.0
        while (await a.get("/robots/lst")).status_code != 200 or (await a.get("/robots/lst")).json()[
            "battery_level"
        ] != 42.0:
            waited += 0.05
            assert waited < 1.0, "instance A still showed an older latest state after 1 s"
            await asyncio.sleep(0.05)
        for client in (a, b):  # both serve everything either acknowledged, once
            for robot in range(4):
                page = (await client.get(f"/telemetry/r{robot}", params={"limit": "100"})).json()
                assert sorted(r["seq"] for r in page["readings"]) == list(range(robot, 40, 4))


# A listener's last statement is its second LISTEN once both channels are set up (app.platform.notices).
LISTENERS = """
SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN "fleet_alerts"' AND datname = current_database()
"""


async def both_listening(conn: asyncpg.Connection) -> None:
    for _ in range(200):  # reconnecting takes a second
        if len(await conn.fetch(LISTENERS)) == 2:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the instances did not listen again")


async def test_a_subscriber_misses_nothing_while_its_instance_is_not_listening(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    """The LISTEN connections drop (as at a database restart) and B commits before A listens again: those notices
    are lost, and A reads what was committed meanwhile once it listens again. Each reading arrives once."""
    async with (
        live_api(settings) as url_a,
        live_api(settings) as url_b,
        httpx.AsyncClient(base_url=url_a, timeout=10) as a,
        httpx.AsyncClient(base_url=url_b, timeout=10) as b,
        a.stream("GET", "/telemetry/stream") as stream,
    ):
        readings: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        reader = asyncio.create_task(collect(sse_events(stream), readings))
        await both_listening(conn)
        await b.post("/telemetry/", json=reading("first", NOW))
        assert (await asyncio.wait_for(readings.get(), 5))["robot_id"] == "first"
        sent = []
        unheard = 0  # rounds whose commits all fell while neither instance listened
        for round_ in range(3):
            await conn.execute(f"SELECT pg_terminate_backend(pid) FROM ({LISTENERS}) l")
            for i in range(5):  # reconnecting waits a second: these commits are noticed by no one
                body = [reading(f"m{round_}", NOW + timedelta(seconds=i), seq=i)]
                assert (await b.post("/telemetry/", json=body)).json() == {"accepted": 1, "duplicates": 0}
                sent.append((f"m{round_}", i))
            unheard += await conn.fetch(LISTENERS) == []
            await both_listening(conn)
        assert unheard  # at least one round's notices were surely lost, however slow the machine
        seen: list[tuple[object, object]] = []
        while len(seen) < len(sent):
            data = await asyncio.wait_for(readings.get(), 10)
            seen.append((data["robot_id"], data["seq"]))
        await b.post("/telemetry/", json=reading("last", NOW))  # after everything: nothing more came before it
        assert (await asyncio.wait_for(readings.get(), 10))["robot_id"] == "last"
        reader.cancel()
        assert sorted(seen) == sorted(sent)
