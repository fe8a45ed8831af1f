"""The simulator's model and its delivery rules, the latter against a real API served by uvicorn on loopback."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec
import pytest

from app.model.reading import COLUMN_NAMES
from app.platform.settings import Settings, replace_settings
from app.telemetry.decoding import Window, parse_rows
from simulator.__main__ import main as simulator_main
from simulator.delivery import Backoff, Deliverer, Stats, parse_retry_after
from simulator.fleet import SITE_HALF_SIZE_M, build_fleet, haversine_m
from simulator.run import SimConfig, Simulation, default_api_url
from tests.support.auth import issue_key
from tests.support.builders import count_rows, series
from tests.support.proxy import TcpProxy
from tests.support.servers import live_api

CENTRE = (37.4275, -122.1697)


def test_fleet_is_reproducible_and_stays_on_site() -> None:
    first, again = build_fleet(20, CENTRE, seed=7), build_fleet(20, CENTRE, seed=7)
    assert [r.robot_id for r in first] == [r.robot_id for r in again]
    assert len({r.robot_id for r in first}) == 20
    statuses = set()
    for _ in range(3000):  # 50 simulated minutes at 1 s steps
        for robot in first:
            robot.step(1.0)
            statuses.add(robot.status)
            assert 0.0 <= robot.battery <= 100.0
            # Farthest point of the site from its centre is the corner; the docks lie on its south edge.
            assert haversine_m(*CENTRE, robot.latitude, robot.longitude) <= SITE_HALF_SIZE_M * 1.5
    assert {"moving", "working"} <= statuses
    moved = sum(r.odometer_m for r in first)
    assert moved > 0


def test_fleet_readings_pass_the_api_validation() -> None:
    robot = build_fleet(1, CENTRE, seed=1)[0]
    docs = [robot.reading(datetime.now(UTC)) for _ in range(3)]
    now = datetime.now(UTC)
    rows = parse_rows(msgspec.json.encode(docs), Window.around(now, timedelta(minutes=1), timedelta(days=1)), 100)
    assert [row[COLUMN_NAMES.index("seq") + 1] for row in rows] == [1, 2, 3]


def test_backoff_is_capped_jittered_and_honours_retry_after() -> None:
    backoff, rng = Backoff(base_s=0.1, cap_s=2.0), random.Random(0)
    for attempt in range(12):
        delays = [backoff.delay_s(attempt, None, rng) for _ in range(200)]
        assert all(0 <= d <= min(2.0, 0.1 * 2**attempt) for d in delays)
        assert len(set(delays)) > 1  # jittered, not a fixed schedule
    assert all(backoff.delay_s(0, 3.0, rng) >= 3.0 for _ in range(50))
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


async def test_503_with_retry_after_is_retried_until_stored(settings: Settings, conn: asyncpg.Connection) -> None:
    url = urlsplit(settings.database.database_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))
    api_settings = replace_settings(settings, database_url=via_proxy, flush_timeout_ms=1000, retry_after_s=1)
    body = msgspec.json.encode(series("retrier", 5))
    async with live_api(api_settings) as base, httpx.AsyncClient(base_url=base) as client:
        await proxy.stop()  # the database goes away: the API answers 503 with Retry-After: 1
        stats = Stats()
        deliverer = Deliverer(client, stats, backoff=Backoff(base_s=0.01, cap_s=0.05))
        started = time.monotonic()
        delivery = asyncio.create_task(deliverer.deliver(body, 5))
        await asyncio.sleep(1.5)
        assert not delivery.done()
        await proxy.start()
        outcome = await asyncio.wait_for(delivery, timeout=20)
        elapsed = time.monotonic() - started
        await proxy.stop()
    assert outcome.status == 200
    assert outcome.attempts >= 2 and stats.retried == outcome.attempts - 1
    # Backoff alone would be ~0.05 s per attempt; waiting past 1.5 s shows Retry-After was honoured.
    assert elapsed >= 1.5
    assert (stats.acknowledged, outcome.accepted) == (5, 5)
    assert await count_rows(conn) == (5, 1)


async def test_4xx_is_not_retried(settings: Settings, conn: asyncpg.Connection) -> None:
    bad = series("bad", 3)
    bad[1]["battery_level"] = 150
    async with live_api(settings) as base, httpx.AsyncClient(base_url=base) as client:
        stats = Stats()
        outcome = await Deliverer(client, stats).deliver(msgspec.json.encode(bad), 3)
    assert (outcome.status, outcome.attempts) == (422, 1)
    assert (stats.rejected, stats.retried, stats.acknowledged) == (3, 0, 0)
    assert await count_rows(conn) == (0, 0)


async def test_resent_batch_is_stored_once(settings: Settings, conn: asyncpg.Connection) -> None:
    body = msgspec.json.encode(series("resender", 20))
    async with live_api(settings) as base, httpx.AsyncClient(base_url=base) as client:
        stats = Stats()
        deliverer = Deliverer(client, stats)
        first = await deliverer.deliver(body, 20)
        second = await deliverer.deliver(body, 20)
    assert (first.accepted, first.duplicates) == (20, 0)
    assert (second.accepted, second.duplicates) == (0, 20)
    assert stats.duplicates == 20
    assert await count_rows(conn) == (20, 1)


@pytest.mark.parametrize("single", [False, True])
async def test_short_simulation_loses_nothing(settings: Settings, conn: asyncpg.Connection, single: bool) -> None:
    async with live_api(settings) as base:
        config = SimConfig(url=base, robots=8, rate_hz=10, batch=5, single=single, duration_s=1.5, connections=4)
        stats = await Simulation(config).run()
    assert stats.generated > 0
    assert stats.acknowledged == stats.generated == stats.sent
    assert (stats.rejected, stats.dropped, stats.unacknowledged, stats.lost) == (0, 0, 0, 0)
    assert await count_rows(conn) == (stats.acknowledged, 8)
    newest = await conn.fetchval("SELECT max(time) FROM telemetry")
    assert datetime.now(UTC) - newest < timedelta(minutes=1)


@pytest.fixture
async def admin_key(pool: asyncpg.Pool) -> str:
    """The operator key a run provisions its robots with (admin) and checks them with (read)."""
    return await issue_key(pool, "sim", "admin", "read")


async def test_simulation_with_credentials_provisions_its_robots(
    settings: Settings, conn: asyncpg.Connection, admin_key: str
) -> None:
    async with live_api(replace_settings(settings, auth="on")) as base:
        config = SimConfig(url=base, robots=4, rate_hz=10, batch=5, duration_s=1.0, connections=4, admin_key=admin_key)
        stats = await Simulation(config).run()
        again = await Simulation(config).run()  # the same robots, provisioned already: each gets a new token
    for run in (stats, again):
        assert run.generated > 0 and run.acknowledged == run.generated
        assert (run.rejected, run.lost) == (0, 0)
    tokens = await conn.fetchval("SELECT count(*) FROM credentials WHERE kind = 'robot'")
    assert tokens == 8


def test_simulator_targets_the_api_make_up_started() -> None:
    assert default_api_url({"FLEET_HOST": "127.0.0.2", "FLEET_PORT": "9001"}) == "http://127.0.0.2:9001"
    assert default_api_url({"FLEET_API_URL": "http://api:1"}) == "http://api:1"
    assert default_api_url({}) == "http://127.0.0.1:8000"


def test_simulator_says_when_the_api_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulator_main(["--url", "http://127.0.0.1:9", "--duration", "1"]) == 1
    assert "cannot reach the API" in capsys.readouterr().out


async def test_the_simulator_stops_at_a_credential_the_api_refuses(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, a run without a key printed a 401 warning per reading (3,000 of them) before failing."""
    async with live_api(replace_settings(settings, auth="on")) as base:
        for key, said in ((None, "wants a credential (401)"), ("flt_k_wrong", "refused the key (401)")):
            args = ["--url", base, "--duration", "5", "--robots", "3"] + (["--admin-key", key] if key else [])
            started = time.monotonic()
            assert await asyncio.to_thread(simulator_main, args) == 1
            out = capsys.readouterr()
            assert said in out.out and time.monotonic() - started < 5  # asked once, before the run
            assert "rejected (401)" not in out.err


async def test_a_run_stops_sending_at_the_first_401(
    settings: Settings, conn: asyncpg.Connection, admin_key: str
) -> None:
    async with live_api(replace_settings(settings, auth="on")) as base:
        config = SimConfig(url=base, robots=4, rate_hz=10, batch=1, duration_s=30, connections=2, admin_key=admin_key)
        sim = Simulation(config)
        sending = asyncio.Event()
        run = asyncio.create_task(sim.run(on_tick=lambda s: sending.set() if s.stats.acknowledged else None))
        await asyncio.wait_for(sending.wait(), timeout=20)
        await conn.execute("UPDATE credentials SET revoked_at = now() WHERE kind = 'robot'")
        await conn.execute("UPDATE credential_epoch SET epoch = epoch + 1")
        stats = await asyncio.wait_for(run, timeout=20)  # not the 30 s the run was asked for
    assert sim.refused is not None and stats.rejected >= 1


async def test_make_simulate_makes_a_key_for_its_run_and_revokes_it_after(
    settings: Settings, conn: asyncpg.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make up` then `make simulate`, with no key of the user's: the Makefile passes --local-key."""
    monkeypatch.setenv("FLEET_DATABASE_URL", database_url)
    async with live_api(replace_settings(settings, auth="on")) as base:
        args = ["--url", base, "--local-key", "--robots", "3", "--rate", "5", "--duration", "1"]
        assert await asyncio.to_thread(simulator_main, args) == 0
    keys = await conn.fetch("SELECT name, revoked_at FROM credentials WHERE kind = 'key'")
    assert [(k["name"], k["revoked_at"] is not None) for k in keys] == [("simulator (make simulate)", True)]
    assert await conn.fetchval("SELECT count(*) FROM credentials WHERE kind = 'robot'") == 3
