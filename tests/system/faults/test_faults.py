"""The fault suite (`make test-faults`; in the system tier): clients that retry like the simulator write readings
with unique (robot, timestamp) keys while PostgreSQL is restarted, crashed, killed -9 or frozen, and while the API
is stopped or killed -9 and restarted. Then every reading is accounted for: none acknowledged is missing, none
is stored twice, none is stored that was never sent; after an API crash the latest state is the newest reading."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import msgspec
import pytest

from simulator.delivery import Deliverer, Stats
from tests.support.faults import (
    ApiProcess,
    crash_database,
    database_up,
    freeze_database,
    kill_database,
    restart_database,
)

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif("FLEET_TEST_SERVER_URL" in os.environ, reason="needs the project-local cluster to break"),
]

CLIENTS = 8
READINGS_PER_POST = 10
LOAD_BEFORE_S = 1.5
LOAD_AFTER_S = 1.5
DELIVERY_DEADLINE_S = 60.0
STATE_REPAIRED_WITHIN_S = 10.0  # several alert rounds (FLEET_ALERT_TICK_MS, 1 s), on a loaded machine
READING = {"location": {"latitude": 1.0, "longitude": 2.0}, "battery_level": 50.0}
FAULTS: tuple[str, ...] = ("postgres restart", "postgres immediate stop", "postgres kill -9", "postgres frozen 15 s")
FAULTS += ("api SIGTERM", "api kill -9")


@pytest.fixture
def api(database_url: str) -> Iterator[ApiProcess]:
    async def empty() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("TRUNCATE telemetry, robots, robot_latest, credentials RESTART IDENTITY")
        finally:
            await conn.close()

    asyncio.run(empty())
    process = ApiProcess(database_url)
    process.start()
    yield process
    if process.process is not None and process.process.poll() is None:
        process.stop(signal.SIGTERM)
    database_up()  # whatever a failed test left behind


class Load:
    """Clients posting batches with unique keys, each retried like the simulator until acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent: set[tuple[str, datetime]] = set()
        self.acknowledged: set[tuple[str, datetime]] = set()
        self.stats = Stats()
        self.stop = asyncio.Event()
        self.base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

    async def client(self, index: int) -> None:
        robot_id = f"fault-{index}"
        deadline = asyncio.get_running_loop().time() + DELIVERY_DEADLINE_S
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            deliverer = Deliverer(http, self.stats, rng=random.Random(index))
            step = 0
            while not self.stop.is_set():
                keys = [(robot_id, self.base + timedelta(milliseconds=step + i)) for i in range(READINGS_PER_POST)]
                step += READINGS_PER_POST
                body = msgspec.json.encode([{**READING, "robot_id": r, "timestamp": at} for r, at in keys])
                self.sent.update(keys)
                outcome = await deliverer.deliver(body, len(keys), deadline)
                if outcome.acknowledged:
                    self.acknowledged.update(keys)
                await asyncio.sleep(0.01)


async def run_with_fault(api: ApiProcess, fault: Callable[[], None]) -> Load:
    load = Load(api.url)
    clients = [asyncio.create_task(load.client(i)) for i in range(CLIENTS)]
    await asyncio.sleep(LOAD_BEFORE_S)
    await asyncio.to_thread(fault)
    await asyncio.sleep(LOAD_AFTER_S)
    load.stop.set()
    await asyncio.gather(*clients)
    return load


async def stored_keys(database_url: str) -> list[tuple[str, datetime]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT r.robot_id, t.time FROM telemetry t JOIN robots r USING (robot_key)")
        return [(row["robot_id"], row["time"]) for row in rows]
    finally:
        await conn.close()


def account(load: Load, stored: list[tuple[str, datetime]]) -> None:
    stored_set = set(stored)
    lost = load.acknowledged - stored_set
    unexpected = stored_set - load.sent
    assert load.acknowledged, "nothing was acknowledged: the load did not run"
    assert (len(lost), len(stored) - len(stored_set), len(unexpected)) == (0, 0, 0), (lost, unexpected)
    assert load.stats.unacknowledged == 0  # every payload got through before its deadline


def restart_api(api: ApiProcess, sig: signal.Signals) -> Callable[[], None]:
    def fault() -> None:
        api.stop(sig)
        api.start()

    return fault


@pytest.mark.parametrize(
    "name",
    [
        "postgres restart",
        "postgres immediate stop",
        "postgres kill -9",
        "postgres frozen 15 s",
        "api SIGTERM",
        "api kill -9",
    ],
)
async def test_nothing_acknowledged_is_lost(api: ApiProcess, database_url: str, name: str) -> None:
    faults: dict[str, Callable[[], None]] = {
        "postgres restart": restart_database,
        "postgres immediate stop": crash_database,
        "postgres kill -9": kill_database,
        "postgres frozen 15 s": freeze_database,
        "api SIGTERM": restart_api(api, signal.SIGTERM),
        "api kill -9": restart_api(api, signal.SIGKILL),
    }
    load = await run_with_fault(api, faults[name])
    account(load, await stored_keys(database_url))
    # The restarted process repaired what a crash left unwritten: each robot's state is its newest reading. A flush
    # that committed as the database went down was answered 503, so no process noted it: the alert rounds (every
    # second) write the state from the committed readings. Seen once: three robots 30 ms behind right after a
    # restart. So within a few rounds, not at once.
    newest: dict[str, datetime] = {}
    for robot_id, at in await stored_keys(database_url):
        newest[robot_id] = max(at, newest.get(robot_id, at))
    deadline = time.monotonic() + STATE_REPAIRED_WITHIN_S
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        while True:
            states = (await http.get("/robots")).json()["robots"]
            latest = {s["robot_id"]: datetime.fromisoformat(s["timestamp"]) for s in states}
            if latest == newest or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert latest == newest
