"""The fault suite's MQTT rows, and the robot client's power-cut test: robot clients (`python -m fleet_robot`, each
its own process and SQLite outbox) send over MQTT while the broker is killed -9, the API is killed -9, PostgreSQL
restarts, or a client itself is killed -9 mid-batch and started again on its outbox. Then each robot's stored
readings are counted against its own outbox: every reading it ever recorded is stored exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from benchmarks.servers import ROOT
from fleet_robot import Outbox
from tests.support.auth import issue_robot
from tests.support.broker import Broker
from tests.support.faults import ApiProcess, database_up, restart_database

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif("FLEET_TEST_SERVER_URL" in os.environ, reason="needs the project-local cluster to break"),
]

ROBOTS = 4
READINGS_PER_ROBOT = 1500
RATE_HZ = 300  # per robot: 5 s of load, the fault 1.5 s in
BATCH = 20
FAULT_AT_S = 1.5
ACK_TIMEOUT_S = 3.0  # the client's wait for an answer before it sends again (10 s by default)
DRAIN_TIMEOUT_S = 90.0  # a loaded CI machine; each client exits as soon as its outbox is empty


class Fleet:
    """The robots' client processes; each robot's token in a file, its outbox in a file."""

    def __init__(self, directory: Path, url: str, tokens: dict[str, str]) -> None:
        self.directory, self.url = directory, url
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        for robot_id, token in tokens.items():
            (directory / f"{robot_id}.token").write_text(token)

    def outbox(self, robot_id: str) -> Path:
        return self.directory / f"{robot_id}.db"

    def start(self, robot_id: str, count: int = READINGS_PER_ROBOT) -> None:
        command = [sys.executable, "-m", "fleet_robot", "--robot-id", robot_id, "--url", self.url]
        command += ["--token-file", str(self.directory / f"{robot_id}.token"), "--outbox", str(self.outbox(robot_id))]
        command += ["--count", str(count), "--rate", str(RATE_HZ), "--batch", str(BATCH)]
        command += ["--ack-timeout", str(ACK_TIMEOUT_S), "--drain-timeout", str(DRAIN_TIMEOUT_S)]
        self.processes[robot_id] = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE)

    def wait(self) -> None:
        for robot_id, process in self.processes.items():
            out, _ = process.communicate(timeout=DRAIN_TIMEOUT_S + 30)
            assert process.returncode == 0, (robot_id, out)

    def kill(self, robot_id: str | None = None) -> None:
        """kill -9 one robot's client, or all that still run."""
        for process in [self.processes[robot_id]] if robot_id else list(self.processes.values()):
            if process.poll() is None:
                process.kill()
            process.communicate()


@pytest.fixture
def robots(database_url: str) -> dict[str, str]:
    async def provision() -> dict[str, str]:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("TRUNCATE telemetry, robots, robot_latest, credentials RESTART IDENTITY")
        finally:
            await conn.close()
        async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
            return {f"mq-{i}": await issue_robot(pool, f"mq-{i}") for i in range(ROBOTS)}

    return asyncio.run(provision())


@pytest.fixture
def broker(tmp_path: Path, database_url: str, robots: dict[str, str]) -> Iterator[Broker]:
    broker = Broker(tmp_path / "mqtt", database_url)
    broker.start()  # with the robots' accounts already written
    yield broker
    broker.stop()


@pytest.fixture
def api(database_url: str, broker: Broker) -> Iterator[ApiProcess]:
    process = ApiProcess(database_url, FLEET_AUTH="on", **broker.service_settings())
    process.start()
    yield process
    if process.process is not None and process.process.poll() is None:
        process.stop(signal.SIGTERM)
    database_up()  # whatever a failed test left behind


async def stored_seqs(database_url: str) -> dict[str, list[int]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT r.robot_id, t.seq FROM telemetry t JOIN robots r USING (robot_key)")
    finally:
        await conn.close()
    stored: dict[str, list[int]] = {}
    for row in rows:
        stored.setdefault(row["robot_id"], []).append(row["seq"])
    return stored


def account(fleet: Fleet, robots: dict[str, str], database_url: str) -> None:
    """Each robot's stored readings against its outbox: lost, duplicated and unexpected are all 0."""
    stored = asyncio.run(stored_seqs(database_url))
    for robot_id in robots:
        outbox = Outbox(fleet.outbox(robot_id))
        produced, pending, dead = outbox.produced, outbox.pending(), outbox.dead()
        outbox.close()
        seqs = stored.get(robot_id, [])
        expected = set(range(1, produced + 1))
        lost, unexpected = expected - set(seqs), set(seqs) - expected
        duplicated = len(seqs) - len(set(seqs))
        assert produced > 0 and (pending, dead) == (0, [])
        assert (len(lost), duplicated, len(unexpected)) == (0, 0, 0), (robot_id, sorted(lost)[:10], unexpected)


def run_fleet(fleet: Fleet, robots: dict[str, str], fault: Callable[[Fleet], None]) -> None:
    for robot_id in robots:
        fleet.start(robot_id)
    try:
        time.sleep(FAULT_AT_S)
        fault(fleet)
        fleet.wait()
    finally:
        fleet.kill()


def kill_broker(broker: Broker) -> Callable[[Fleet], None]:
    def fault(fleet: Fleet) -> None:
        broker.kill()
        time.sleep(0.5)
        broker.start()

    return fault


def kill_api(api: ApiProcess) -> Callable[[Fleet], None]:
    def fault(fleet: Fleet) -> None:
        api.stop(signal.SIGKILL)
        api.start()

    return fault


def kill_client(fleet: Fleet) -> None:
    """kill -9 a robot's client mid-batch (it sends a batch every few milliseconds), then start it again on the
    same outbox to send what is left: what a power cut and a reboot do to a robot."""
    robot_id = next(iter(fleet.processes))
    fleet.kill(robot_id)
    fleet.start(robot_id, count=0)


@pytest.mark.parametrize("name", ["broker kill -9", "api kill -9", "postgres restart"])
def test_every_reading_a_robot_recorded_is_stored_once(
    api: ApiProcess, broker: Broker, robots: dict[str, str], database_url: str, tmp_path: Path, name: str
) -> None:
    faults: dict[str, Callable[[Fleet], None]] = {
        "broker kill -9": kill_broker(broker),
        "api kill -9": kill_api(api),
        "postgres restart": lambda fleet: restart_database(),
    }
    fleet = Fleet(tmp_path, broker.url, robots)
    run_fleet(fleet, robots, faults[name])
    account(fleet, robots, database_url)


@pytest.mark.parametrize("transport", ["mqtt", "http"])
def test_a_robot_killed_mid_batch_resumes_from_its_outbox_with_nothing_lost_or_doubled(
    api: ApiProcess, broker: Broker, robots: dict[str, str], database_url: str, tmp_path: Path, transport: str
) -> None:
    """The fault suite's "client kill -9" row, over both transports: the client's power-cut test (kill -9 stands
    in for the cut; the outbox's commits are fsynced, which is what survives a real one)."""
    fleet = Fleet(tmp_path, broker.url if transport == "mqtt" else api.url, robots)
    run_fleet(fleet, robots, kill_client)
    account(fleet, robots, database_url)
