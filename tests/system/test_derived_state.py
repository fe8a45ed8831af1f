"""The derived-state suite (`make test-system`, also in `make check`): two API processes under a load that mixes new
readings with replays, late readings, newest-first bodies and an older and a newer reading racing through the two,
while PostgreSQL is restarted or killed -9 or frozen, or an API process is killed -9 right after a 200. Then every
derived answer, from both processes, is compared with an independent computation from the raw rows
(tests/support/oracle.py): history, buckets of 1m/1h/1d in three zones, daily activity, distance, latest state,
open alerts, and what each live subscriber received."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import msgspec
import pytest

from simulator.delivery import Deliverer, Stats
from tests.support import oracle
from tests.support.database import (
    REFRESH_EVERY_30_S,
    REFRESH_EVERY_SECOND,
    TRUNCATE_ALL,
    execute_once,
    refresh_minutes,
)
from tests.support.faults import ApiProcess, database_up, freeze_database, kill_database, restart_database
from tests.support.sse import sse_events

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif("FLEET_TEST_SERVER_URL" in os.environ, reason="needs the project-local cluster to break"),
]

HISTORY_ROBOTS = 8
RACE_ROBOTS = 4
BODY_READINGS = 10
STEP_S = 37  # robot time between successive readings: 8 robots' timelines span a day and a half together
LOAD_BEFORE_S = 2.0
LOAD_AFTER_S = 3.0
DEADLINE_S = 90.0
GAP_S = 300
JOB_REFRESH_WITHIN_S = 15
ZONES = ("UTC", "Asia/Kolkata", "Asia/Kathmandu")  # +5:30 and +5:45, without DST: wall clocks off the hour
WIDTHS = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
SETTINGS = {
    "FLEET_ROLLUP_INTERVAL_MS": "500",  # passes run during the load: answers mix rollups and readings
    "FLEET_ALERT_INTERVAL_MS": "100",
    "FLEET_ALERT_TICK_MS": "200",
}
EVERY_ROW = """
SELECT r.robot_id, t.time, t.latitude, t.longitude, t.battery_level, t.status::text, t.stored_at
FROM telemetry t JOIN robots r USING (robot_key)
"""
HERE = {"location": {"latitude": 37.2, "longitude": -122.2}}
REFRESHED = "SELECT refreshed_xid IS NOT NULL FROM rollup_state"
FOLLOWED = "SELECT derived_xid > coalesce((SELECT max(stored_xid) FROM telemetry), 0) FROM derived_state"


@pytest.fixture
def apis(database_url: str) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    async def empty() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(TRUNCATE_ALL)
            await conn.execute(REFRESH_EVERY_SECOND)  # the database refreshes the minutes during the load
        finally:
            await conn.close()

    asyncio.run(empty())
    pair = (ApiProcess(database_url, **SETTINGS), ApiProcess(database_url, **SETTINGS))
    for api in pair:
        api.start()
    yield pair
    for api in pair:
        if api.process is not None and api.process.poll() is None:
            api.stop(signal.SIGTERM)
    database_up()  # whatever a failed test left behind
    asyncio.run(execute_once(database_url, REFRESH_EVERY_30_S))


class Load:
    """Robots that post through both processes, retrying like the simulator until acknowledged."""

    def __init__(self, a: ApiProcess, b: ApiProcess) -> None:
        self.apis = (a, b)
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.start = self.now - timedelta(hours=36)
        self.stop = asyncio.Event()
        self.stats = Stats()
        self.on_ack: Callable[[int], None] | None = None  # called with the process index of every 200

    async def deliver(self, http: httpx.AsyncClient, body: list[dict[str, Any]], rng: random.Random) -> None:
        deadline = asyncio.get_running_loop().time() + DEADLINE_S
        outcome = await Deliverer(http, self.stats, rng=rng).deliver(msgspec.json.encode(body), len(body), deadline)
        assert outcome.acknowledged, outcome

    async def history_robot(self, index: int, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
        """A robot's day and a half: bodies of 10, every third newest-first, every fifth replaying two readings
        of an earlier body, and some readings held back and sent late (store-and-forward). Only a held-back
        reading may lack a status: it is never a robot's newest, so whether the status rule's alert is open
        depends on the newest reading alone, not on which states the rounds happened to see."""
        rng = random.Random(index)
        robot_id = f"hist-{index}"
        latitude, longitude = 37.0 + index / 100, -122.0
        sent: list[dict[str, Any]] = []
        held_back: list[dict[str, Any]] = []
        step = 0
        done = False
        while not self.stop.is_set() and not done:
            body: list[dict[str, Any]] = []
            for _ in range(BODY_READINGS):
                at = self.start + timedelta(seconds=step * STEP_S + index)
                step += 1
                if at > self.now - timedelta(minutes=10):
                    done = True  # the timeline ends before now: nothing credited up to now depends on a request
                    break
                late = step % 2 == 1 and rng.random() < 0.3
                latitude += rng.uniform(-1e-4, 1e-4)
                longitude += rng.uniform(-1e-4, 1e-4)
                located = rng.random() < 0.85
                reading = {
                    "robot_id": robot_id,
                    "timestamp": at.isoformat(),
                    "battery_level": round(rng.uniform(1, 100), 2),
                    "status": rng.choice([*oracle.STATUSES, *([None] if late else [])]),
                    "location": {"latitude": latitude, "longitude": longitude} if located else None,
                    "pose": None if located else {"frame": "map", "x": rng.uniform(-5, 5), "y": rng.uniform(-5, 5)},
                }
                (held_back if late else body).append(reading)
            if len(sent) >= BODY_READINGS and step % 5 == 0:
                body += rng.sample(sent, 2)  # a replay inside a body of new readings
            if step % 3 == 0:
                body.reverse()
            if len(held_back) >= BODY_READINGS:
                body += held_back
                held_back = []
            if not body:
                break
            turn = step // BODY_READINGS % 2
            await self.deliver(clients[turn], body, rng)
            if self.on_ack is not None:
                self.on_ack(turn)
            sent += body
            await asyncio.sleep(0.02)
        if held_back:
            await self.deliver(clients[0], held_back, rng)

    async def race_robot(self, index: int, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
        """An older and a newer reading at once, through each process in turn."""
        rng = random.Random(100 + index)
        robot_id = f"race-{index}"
        step = 0
        while not self.stop.is_set():
            older = self.start + timedelta(seconds=2 * step)
            newer = older + timedelta(seconds=1)
            step += 1
            if newer > self.now - timedelta(minutes=10):
                return
            bodies = [
                [{"robot_id": robot_id, "timestamp": at.isoformat(), "battery_level": 50, "status": status, **HERE}]
                for at, status in ((newer, rng.choice(oracle.STATUSES)), (older, rng.choice(oracle.STATUSES)))
            ]
            first = step % 2
            await asyncio.gather(
                self.deliver(clients[first], bodies[0], rng), self.deliver(clients[1 - first], bodies[1], rng)
            )
            await asyncio.sleep(0.02)

    async def stuck_robot(self, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
        """Moving, but never more than a metre from where it is: one stationary alert, however many processes."""
        rng = random.Random(7)
        turn = 0
        while not self.stop.is_set():
            here = {"latitude": 37.5 + rng.uniform(0, 5e-6), "longitude": -122.5}
            reading = {"robot_id": "stuck", "battery_level": 80, "status": "moving", "location": here}
            await self.deliver(clients[turn], [reading], rng)
            turn = 1 - turn
            await asyncio.sleep(0.1)

    async def run(self, fault: Callable[[], None]) -> None:
        async with (
            httpx.AsyncClient(base_url=self.apis[0].url, timeout=5) as a,
            httpx.AsyncClient(base_url=self.apis[1].url, timeout=5) as b,
        ):
            tasks = [asyncio.create_task(self.history_robot(i, (a, b))) for i in range(HISTORY_ROBOTS)]
            tasks += [asyncio.create_task(self.race_robot(i, (a, b))) for i in range(RACE_ROBOTS)]
            tasks.append(asyncio.create_task(self.stuck_robot((a, b))))
            await asyncio.sleep(LOAD_BEFORE_S)
            await asyncio.to_thread(fault)
            await asyncio.sleep(LOAD_AFTER_S)
            self.stop.set()
            await asyncio.gather(*tasks)


class Subscriber:
    """Every reading a live stream delivered, from a task of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: list[tuple[str, datetime]] = []
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async with (
                httpx.AsyncClient(base_url=self.url, timeout=httpx.Timeout(5, read=None)) as http,
                http.stream("GET", "/telemetry/stream") as response,
            ):
                async for event in sse_events(response):
                    if event.get("comment") == "subscribed":
                        self.ready.set()
                    if event.get("event") == "reading":
                        data = msgspec.json.decode(event["data"])
                        self.received.append((data["robot_id"], datetime.fromisoformat(data["timestamp"])))
        except httpx.HTTPError:
            pass  # its process was killed: what it received so far is checked

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.mark.parametrize(
    "name", ["postgres restart", "postgres kill -9", "api kill -9 after a 200", "postgres frozen 15 s"]
)
async def test_every_derived_answer_equals_the_raw_rows(
    apis: tuple[ApiProcess, ApiProcess], database_url: str, name: str
) -> None:
    a, b = apis
    load = Load(a, b)
    async with httpx.AsyncClient(base_url=a.url, timeout=10) as http:
        for rule in ({"kind": "status"}, {"kind": "stationary", "after": "2s", "within_m": 5, "robot_id": "stuck"}):
            body = {"name": rule["kind"], "condition": {k: v for k, v in rule.items() if k != "robot_id"}}
            if "robot_id" in rule:
                body["robot_id"] = rule["robot_id"]
            assert (await http.post("/alert-rules", json=body)).status_code == 201
    subscribers = [Subscriber(a.url), Subscriber(b.url)]
    for subscriber in subscribers:
        await asyncio.wait_for(subscriber.ready.wait(), 10)
    await load.run(fault_for(name, b, load))
    conn = await asyncpg.connect(database_url)
    try:
        await until_true(lambda: conn.fetchval(FOLLOWED))
        rows = [oracle.Raw(*record) for record in await conn.fetch(EVERY_ROW)]
        # The database's own job (in its background worker) refreshes the minutes every second during the load, so
        # buckets read them where it went. Not necessarily after the fault: TimescaleDB waits 5 minutes before
        # running a job again that a restart of the database interrupted, and on a loaded machine the job may not
        # have run once before the restart came. Then the refresh is run by hand (the job's own procedure), so the
        # answers below still mix the minutes and the readings.
        try:
            await until_true(lambda: conn.fetchval(REFRESHED), within_s=JOB_REFRESH_WITHIN_S)
        except AssertionError:
            await refresh_minutes(conn)
        assert await conn.fetchval(REFRESHED)
    finally:
        await conn.close()
    keys = [(row.robot_id, row.time) for row in rows]
    assert len(keys) == len(set(keys))
    robots = oracle.by_robot(rows)
    assert len(robots) == HISTORY_ROBOTS + RACE_ROBOTS + 1
    await compare_streams(subscribers, set(keys), killed=name.startswith("api"))
    for api in apis:
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
            await compare_latest(http, robots)
            await compare_alerts(http, robots)
            await compare_history(http, robots)
            await compare_buckets(http, robots, load.start)
            await compare_fleet(http, robots, load.now)


def fault_for(name: str, b: ApiProcess, load: Load) -> Callable[[], None]:
    if name == "postgres restart":
        return restart_database
    if name == "postgres kill -9":
        return kill_database
    if name == "postgres frozen 15 s":
        return freeze_database

    def kill_after_a_200() -> None:
        killed = threading.Event()
        assert b.process is not None
        process = b.process

        def on_ack(turn: int) -> None:
            if turn == 1 and not killed.is_set():
                process.send_signal(signal.SIGKILL)  # in the client's task, as soon as it has the 200
                killed.set()

        load.on_ack = on_ack
        assert killed.wait(timeout=30)
        process.wait(timeout=10)
        load.on_ack = None
        b.start()

    return kill_after_a_200


async def until_true(check: Callable[[], Any], within_s: float = 30) -> None:
    for _ in range(int(within_s / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time given")


async def compare_streams(subscribers: list[Subscriber], stored: set[tuple[str, datetime]], *, killed: bool) -> None:
    """Each subscriber got every stored reading once; one whose process was killed, only stored ones, once."""
    live = subscribers[:1] if killed else subscribers

    async def complete() -> bool:
        return all(len(s.received) >= len(stored) for s in live)

    try:
        await until_true(complete)
    finally:
        for subscriber in subscribers:
            await subscriber.close()
    for subscriber in subscribers:
        assert len(subscriber.received) == len(set(subscriber.received)), "a reading was streamed twice"
        if subscriber in live:
            assert set(subscriber.received) == stored
        else:
            assert set(subscriber.received) <= stored


async def compare_latest(http: httpx.AsyncClient, robots: dict[str, list[oracle.Raw]]) -> None:
    states = {s["robot_id"]: s for s in (await http.get("/robots", params={"limit": "100"})).json()["robots"]}
    assert set(states) == set(robots)
    for robot_id, rows in robots.items():
        expected, state = oracle.newest(rows), states[robot_id]
        assert datetime.fromisoformat(state["timestamp"]) == expected.time, robot_id
        assert (state["battery_level"], state["status"]) == (expected.battery_level, expected.status), robot_id


async def compare_alerts(http: httpx.AsyncClient, robots: dict[str, list[oracle.Raw]]) -> None:
    alerts = (await http.get("/alerts", params={"limit": "1000"})).json()["alerts"]
    opened = {(a["kind"], a["robot_id"]) for a in alerts if a["state"] != "resolved"}
    expected = {("status", r) for r, rows in robots.items() if oracle.newest(rows).status == "error"}
    assert opened == expected | {("stationary", "stuck")}
    assert [a["kind"] for a in alerts if a["robot_id"] == "stuck"] == ["stationary"]  # once, never resolved


async def compare_history(http: httpx.AsyncClient, robots: dict[str, list[oracle.Raw]]) -> None:
    for robot_id in ("hist-0", "race-0"):
        seen: list[tuple[datetime, float]] = []
        cursor = None
        while True:
            params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = (await http.get(f"/telemetry/{robot_id}", params=params)).json()
            seen += [(datetime.fromisoformat(r["timestamp"]), r["battery_level"]) for r in page["readings"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [(r.time, r.battery_level) for r in reversed(robots[robot_id])]


async def compare_buckets(http: httpx.AsyncClient, robots: dict[str, list[oracle.Raw]], start: datetime) -> None:
    since, until = start - timedelta(hours=1, seconds=17), start + timedelta(hours=37)
    for robot_id in ("hist-1", "hist-2", "race-1"):
        for zone in ZONES:
            for name, width in WIDTHS.items():
                if name == "1m" and zone != "UTC":
                    continue  # minutes are minutes in every zone here
                params = {"bucket": name, "tz": zone, "since": since.isoformat(), "until": until.isoformat()}
                answer = (await http.get(f"/telemetry/{robot_id}", params=params)).json()["buckets"]
                got = {datetime.fromisoformat(bucket["start"]): bucket for bucket in answer if bucket["readings"]}
                expected = oracle.buckets(robots[robot_id], width, zone, since, until)
                assert set(got) == set(expected), (robot_id, zone, name)
                for bucket_start, want in expected.items():
                    bucket = got[bucket_start]
                    for field, value in want.items():
                        if field == "battery_level_avg":
                            assert bucket[field] == pytest.approx(value, rel=1e-9), (robot_id, zone, name, field)
                        else:
                            assert bucket[field] == value, (robot_id, zone, name, bucket_start, field)


async def compare_fleet(http: httpx.AsyncClient, robots: dict[str, list[oracle.Raw]], now: datetime) -> None:
    asked_at = datetime.now(UTC)
    for zone in ZONES:
        for day in (now.date() - timedelta(days=2), now.date() - timedelta(days=1), now.date()):
            await compare_day(http, robots, zone, day, asked_at)
    since, until = now - timedelta(hours=30, seconds=13), now
    answer = await http.get("/fleet/distance", params={"since": since.isoformat(), "until": until.isoformat()})
    got = {r["robot_id"]: (r["readings"], r["metres"]) for r in answer.json()["robots"]}
    for robot_id, rows in robots.items():
        readings, metres = oracle.distance(rows, since, until)
        if readings == 0:
            assert robot_id not in got
            continue
        assert got[robot_id][0] == readings, robot_id
        assert got[robot_id][1] == pytest.approx(metres, rel=1e-9, abs=1e-6), robot_id


async def compare_day(
    http: httpx.AsyncClient, robots: dict[str, list[oracle.Raw]], zone: str, day: date, asked_at: datetime
) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone))
    params = {"day": day.isoformat(), "tz": zone, "limit": "100"}
    got = {r["robot_id"]: r["hours"] for r in (await http.get("/fleet/daily-activity", params=params)).json()["robots"]}
    for robot_id, rows in robots.items():
        if robot_id == "stuck":
            continue  # stamped by the server as it posts: its last status runs up to the request's now
        expected = oracle.status_seconds(rows, start, start + timedelta(days=1), GAP_S, asked_at)
        hours = got.get(robot_id, {})
        assert set(hours) == set(expected), (robot_id, zone, day)
        for status, seconds in expected.items():
            assert hours[status] * 3600 == pytest.approx(seconds, rel=1e-9, abs=1e-6), (robot_id, zone, day, status)
