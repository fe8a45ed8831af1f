"""``python -m benchmarks.ingest``: COPY ceiling, the API (batch and single) and InfluxDB, side by side in one run.

Every method gets the same generated rows into the same schema; each phase checks that every row is stored.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console

from app.auth import provisioning as admin
from app.auth import queries as auth_sql
from app.model.reading import Row
from app.platform.migrations import apply_migrations, create_database_if_missing
from app.platform.notices import COMMITTED_BELOW
from app.platform.settings import load_settings
from app.telemetry import queries as telemetry_sql
from benchmarks import report
from benchmarks.alert_rules import bench_rules
from benchmarks.dataset import chunks, generate_rows, json_bodies, line_protocol_bodies
from benchmarks.loadgen import LoadResult, build_post, run_load
from benchmarks.machine import CpuMeter, descendants, describe_machine, machine_line, pids_named
from benchmarks.mqtt_load import run_mqtt_load
from benchmarks.servers import (
    ROOT,
    api_server,
    deployed_api_server,
    influx_query,
    influx_server,
    influxd_missing_reason,
    mqtt_broker,
)

BENCH_DATABASE = "fleet_bench"
COPY_ROWS_PER_TRANSACTION = 10_000
INFLUX_LINES_PER_REQUEST = 5_000
INFLUX_SINGLE = "InfluxDB single"
# Single readings as a fleet sends them: each robot with its own token, to a server started as `make up` starts it.
FLEET_SINGLE = "API single, fleet"
MQTT_SINGLE = "MQTT single, fleet"
SUBSCRIBER_CONNECTED_S = 2.0  # after the API answers HTTP, its MQTT subscribers connect and subscribe
# Each robot as fast as its acks come (the rate the service sustains), then at a robot's pace: 5 readings a second
# each, 5,000/s from the fleet, where publish-to-ack latency is what a robot sees rather than a queue's length.
MQTT_PACES_HZ = (0.0, 5.0)
FLEET_PASSES = ("cold", "warm")  # at once after start (every token new to every process), then again
SINGLE_CONNECTIONS = 64
LOADGEN_PROCESSES = 2

# Benchmark-only statements: they reset state between phases and never run in the service.
# The rollups start from now, with the service's status gap: each phase then pays for rolling up its own rows, as a
# running service does. The database's minute refreshes are paused around a reset (a refresh running into the
# TRUNCATE deadlocks it), then scheduled as the phase wants: every 30 s as deployed, every 1 s, or not at all.
RESET_TELEMETRY = "TRUNCATE telemetry, telemetry_1m, telemetry_15m"
RESET_ROLLUPS = (
    f"UPDATE rollup_state SET rolled_up_xid = {COMMITTED_BELOW}, status_gap_s = $1, refreshed_xid = NULL,"
    " refreshed_to = NULL"
)
SCHEDULE_REFRESHES = (
    "SELECT alter_job(job_id, scheduled => $1, schedule_interval => $2::interval, next_start => now() + $2::interval)"
    " FROM timescaledb_information.jobs WHERE proc_name = 'refresh_minutes'"
)
DEPLOYED_REFRESHES = (True, timedelta(seconds=30))  # as migration 017 schedules them
TRUNCATE_ATTEMPTS = 5
RESET_LATEST = "TRUNCATE robot_latest"
RESET_CREDENTIALS = "TRUNCATE credentials"
RESET_ALERTS = "TRUNCATE alert_rules, alerts, webhook_deliveries"
BUMP_RULES_EPOCH = "UPDATE alert_rules_epoch SET epoch = epoch + 1"  # the service reloads its rules on a move
ALERTS_METHOD = "API batch, alerts"  # its own method: never picked as the batch path's best configuration
ROLLUPS_METHOD = "API batch, rollups"  # likewise
# Refreshes and passes every second over what was stored a second ago: the upkeep a long-running service pays,
# inside a phase. Off, the minutes are still a continuous aggregate: its invalidation trigger still runs.
ROLLUP_MODES = {
    "off": ({"FLEET_ROLLUPS": "false"}, (False, timedelta(seconds=1))),
    "minutes every 1 s": ({"FLEET_ROLLUPS": "false"}, (True, timedelta(seconds=1))),
    "minutes and quarter hours every 1 s": (
        {"FLEET_ROLLUPS": "true", "FLEET_ROLLUP_INTERVAL_MS": "1000"},
        (True, timedelta(seconds=1)),
    ),
}
RULES_LOADED_S = 2.5  # more than one FLEET_ALERT_TICK_MS (1 s): every process has the rules
COUNT_TELEMETRY = "SELECT count(*) FROM telemetry"
CPU_COUNT = os.cpu_count() or 1
# The batch phases send a whole fleet's readings through one gateway key over 32 connections. The per-credential
# fairness limits (8 ingest requests in flight, 25,000 queued rows, 1,000 requests/s) exist to keep one client from
# crowding out others; a site whose only writer is one gateway raises them, as this does, so that the benchmark
# measures throughput rather than the limits. Every phase, auth on and off, runs with the same settings.
ONE_GATEWAY = {
    "FLEET_INGEST_REQUESTS_PER_CREDENTIAL": "1000",
    "FLEET_INGEST_REQUESTS_PER_KEY": "1000",
    "FLEET_MAX_QUEUED_ROWS_PER_CREDENTIAL": "100000",
    "FLEET_KEY_REQUESTS_PER_S": "1000000",
    "FLEET_KEY_BURST": "1000000",
}


def postgres_pids() -> list[int]:
    """The benchmark's own cluster (its postmaster and every backend), not any other PostgreSQL on the machine."""
    pgdata = Path(os.environ.get("FLEET_PGDATA", ROOT / ".pgdata"))
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return pids_named("postgres")  # a cluster this checkout does not own (Docker, FLEET_TEST_SERVER_URL)
    return descendants(postmaster)


@dataclass(frozen=True)
class Plan:
    robots: int
    per_robot: int
    single_requests: int
    batch_sizes: tuple[int, ...] = (100, 1000)
    batch_connections: tuple[int, ...] = (8, 32)
    workers: tuple[int, ...] = (1, 2)
    influx_connections: tuple[int, ...] = (2, 8)
    repetitions: int = 1  # every phase this many times, in turn, so the spread between runs is reported


FULL = Plan(robots=1000, per_robot=4000, single_requests=100_000)
# Quick phases last about 5 s each here (1M rows; 35k single POSTs), three times over: long enough to be stable,
# and the spread shows how far one run can be trusted on a shared machine.
# 1,000 robots: the alert-rules phase is specified for that fleet size.
QUICK = Plan(robots=1000, per_robot=1000, single_requests=35_000, batch_connections=(32,), repetitions=3)


@dataclass
class Measurement:
    method: str
    config: str
    rows: int
    seconds: float
    verified: bool
    cpu_s: dict[str, float] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "config": self.config,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows_per_s),
            "verified": self.verified,
            "cpu_s": self.cpu_s,
            "cpu_share_of_machine": {
                name: round(cpu / (self.seconds * CPU_COUNT), 3) for name, cpu in self.cpu_s.items()
            },
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
        }


class Bench:
    def __init__(self, plan: Plan, console: Console) -> None:
        self.plan = plan
        self.console = console
        server = load_settings().database.database_url.rsplit("/", 1)[0]
        self.database_url = f"{server}/{BENCH_DATABASE}"
        self.results: list[Measurement] = []
        self.rows: list[Row] = []
        self.keys: dict[str, int] = {}
        self.admin_key = ""
        self.alert_pairs = 0
        self.rollup_pairs = 0
        self.refreshes = DEPLOYED_REFRESHES
        self.gateway_key = ""  # an ingest-scope key: batches mix robots, as from an edge gateway
        self.robot_tokens: dict[str, str] = {}  # single readings go out with their own robot's token

    def say(self, message: str) -> None:
        self.console.print(f"[{datetime.now(UTC):%H:%M:%S}] {message}")

    def record(self, measurement: Measurement) -> None:
        self.results.append(measurement)
        latency = f", p50/p95/p99 {measurement.p50_ms}/{measurement.p95_ms}/{measurement.p99_ms} ms" * (
            measurement.p99_ms is not None
        )
        self.say(
            f"  {measurement.method} [{measurement.config}]: {measurement.rows_per_s:,.0f} rows/s "
            f"({measurement.rows:,} rows in {measurement.seconds:.2f} s{latency}), cpu {measurement.cpu_s}, "
            f"verified={measurement.verified}"
        )

    # --- database -----------------------------------------------------------------------------------------------

    async def prepare_database(self) -> None:
        await create_database_if_missing(self.database_url)
        await apply_migrations(self.database_url)
        conn = await asyncpg.connect(self.database_url)
        try:
            await self.empty_telemetry(conn)
            await conn.execute(RESET_CREDENTIALS)
            robot_ids = sorted({row[0] for row in self.rows})
            await conn.execute(auth_sql.REGISTER_ROBOTS, robot_ids)
            self.keys = {r["robot_id"]: r["robot_key"] for r in await conn.fetch(auth_sql.SELECT_ROBOT_KEYS, robot_ids)}
        finally:
            await conn.close()

    async def empty_telemetry(self, conn: asyncpg.Connection) -> None:
        await conn.execute(SCHEDULE_REFRESHES, False, timedelta(seconds=30))
        await _truncate(conn, RESET_TELEMETRY)  # may deadlock with a refresh that was running: it has ended by now
        await conn.execute(RESET_ROLLUPS, load_settings().query.max_status_gap_s)
        await conn.execute(SCHEDULE_REFRESHES, *self.refreshes)

    async def reset(self) -> None:
        conn = await asyncpg.connect(self.database_url)
        try:
            await self.empty_telemetry(conn)
            await conn.execute(RESET_LATEST)
            await conn.execute("CHECKPOINT")  # so one phase's dirty pages are not flushed during the next
        finally:
            await conn.close()

    async def stored_rows(self) -> int:
        conn = await asyncpg.connect(self.database_url)
        try:
            return int(await conn.fetchval(COUNT_TELEMETRY))
        finally:
            await conn.close()

    # --- phases -------------------------------------------------------------------------------------------------

    async def copy_ceiling(self, connections: int) -> None:
        await self.reset()
        records = [(self.keys[row[0]], *row[1:]) for row in self.rows]
        batches = list(chunks(records, COPY_ROWS_PER_TRANSACTION))
        conns = [await asyncpg.connect(self.database_url) for _ in range(connections)]
        meter = CpuMeter({"postgres": postgres_pids})

        async def copy_every_nth(conn: asyncpg.Connection, offset: int) -> None:
            for batch in batches[offset::connections]:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        telemetry_sql.TELEMETRY_TABLE, records=batch, columns=telemetry_sql.TELEMETRY_COLUMNS
                    )

        meter.start()
        cpu_before = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(copy_every_nth(conn, i) for i, conn in enumerate(conns)))
        seconds = time.perf_counter() - started
        cpu = meter.stop() | {"client": round(time.process_time() - cpu_before, 2)}
        for conn in conns:
            await conn.close()
        stored = await self.stored_rows()
        self.record(Measurement("COPY", f"{connections} conn", len(records), seconds, stored == len(records), cpu))

    async def provision(self, port: int) -> None:
        """As an operator would: one admin key from the CLI's code path, then robots and a gateway key through the
        admin API."""
        async with await asyncpg.create_pool(self.database_url, min_size=1, max_size=1) as pool:
            admin_key = (await admin.create_key(pool, admin.NewKey("bench admin", ["admin"]))).token
        self.admin_key = admin_key
        headers = {"Authorization": f"Bearer {admin_key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as http:
            gateway = await http.post("/admin/keys", json={"name": "bench gateway", "scopes": ["ingest"]})
            self.gateway_key = gateway.raise_for_status().json()["token"]
            semaphore = asyncio.Semaphore(16)

            async def provision_robot(robot_id: str) -> None:
                async with semaphore:
                    issued = await http.post("/admin/robots", json={"robot_id": robot_id})
                self.robot_tokens[robot_id] = issued.raise_for_status().json()["token"]

            await asyncio.gather(*(provision_robot(robot_id) for robot_id in self.keys))

    def api_run(
        self,
        port: int,
        api_pid: int,
        bodies: list[bytes],
        expected: int,
        connections: int,
        method: str,
        config: str,
        tokens: list[str | None],
        warm_up: bool = False,
    ) -> None:
        requests = [build_post("/telemetry/", body, token=token) for body, token in zip(bodies, tokens, strict=True)]
        if warm_up:
            # A pass that is not measured: each API process then has every robot's token verified and cached, as
            # a running service has. (Cold, the first request of each token per process costs a database look-up.)
            asyncio.run(self.reset())
            run_load("127.0.0.1", port, requests, connections, LOADGEN_PROCESSES, count_acks=True)
        asyncio.run(self.reset())
        meter = CpuMeter({"postgres": postgres_pids, "api": lambda: descendants(api_pid)})
        meter.start()
        load = run_load("127.0.0.1", port, requests, connections, LOADGEN_PROCESSES, count_acks=True)
        cpu = meter.stop() | {"loadgen": round(load.cpu_s, 2)}
        rows = load.accepted + load.duplicates
        stored = asyncio.run(self.stored_rows())
        verified = load.statuses == {200: len(requests)} and load.duplicates == 0 and stored == expected == rows
        latency = _latencies(load) if method.startswith("API single") else {}
        self.record(Measurement(method, config, rows, load.elapsed_s, verified, cpu, **latency))

    async def set_alert_rules(self, port: int, rules: list[dict[str, Any]]) -> None:
        """Replace every alert rule (through the API, as an operator would add them), then let the service load
        them."""
        conn = await asyncpg.connect(self.database_url)
        try:
            await _truncate(conn, RESET_ALERTS)  # may deadlock with the running server's alert round (seen once)
            await conn.execute(BUMP_RULES_EPOCH)
        finally:
            await conn.close()
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as http:
            for rule in rules:
                (await http.post("/alert-rules", json=rule)).raise_for_status()
        await asyncio.sleep(RULES_LOADED_S)

    def alert_phases(self, port: int, pid: int, workers: int, bodies: list[bytes]) -> None:
        """Batch ingest with no alert rules and with 100, side by side in one server."""
        connections = max(self.plan.batch_connections)
        size = len(self.rows) // len(bodies)
        gateway: list[str | None] = [self.gateway_key] * len(bodies)
        pair = [[], bench_rules(sorted(self.keys))]
        if self.alert_pairs % 2:  # the order alternates between repetitions: neither always runs second
            pair.reverse()
        self.alert_pairs += 1
        for rules in pair:
            asyncio.run(self.set_alert_rules(port, rules))
            config = f"{size}/POST, {connections} conn, {workers} worker(s), {len(rules)} alert rules"
            self.api_run(port, pid, bodies, len(self.rows), connections, ALERTS_METHOD, config, gateway)
        asyncio.run(self.set_alert_rules(port, []))

    def rollup_phases(self, workers: int, bodies: list[bytes]) -> None:
        """Batch ingest with the minutes refreshed every second, with the quarter hours' passes too, and with
        neither, side by side (the order turning between repetitions). Every second, so that refreshes and
        passes keep up with the phase: at the deployed 30 s and 10 s, a phase of a few seconds would run few over
        its own rows, and so would not show what sustained ingest pays."""
        connections = max(self.plan.batch_connections)
        size = len(self.rows) // len(bodies)
        gateway: list[str | None] = [self.gateway_key] * len(bodies)
        modes = list(ROLLUP_MODES)
        turn = self.rollup_pairs % len(modes)
        self.rollup_pairs += 1
        for mode in modes[turn:] + modes[:turn]:
            env, self.refreshes = ROLLUP_MODES[mode]
            with api_server(self.database_url, workers, ONE_GATEWAY | env) as (port, pid):
                config = f"{size}/POST, {connections} conn, {workers} worker(s), rollups {mode}"
                self.api_run(port, pid, bodies, len(self.rows), connections, ROLLUPS_METHOD, config, gateway)
        self.refreshes = DEPLOYED_REFRESHES

    def api_phases(self) -> None:
        plan = self.plan
        bodies = {size: json_bodies(self.rows, size) for size in plan.batch_sizes}
        for workers in plan.workers:
            with api_server(self.database_url, workers, ONE_GATEWAY) as (port, pid):
                if not self.gateway_key:
                    asyncio.run(self.provision(port))
                for size in plan.batch_sizes:
                    for connections in plan.batch_connections:
                        config = f"{size}/POST, {connections} conn, {workers} worker(s)"
                        gateway: list[str | None] = [self.gateway_key] * len(bodies[size])
                        self.api_run(port, pid, bodies[size], len(self.rows), connections, "API batch", config, gateway)
                if workers == max(plan.workers):
                    self.alert_phases(port, pid, workers, bodies[max(plan.batch_sizes)])
        self.rollup_phases(max(plan.workers), bodies[max(plan.batch_sizes)])
        best = _best(self.results, "API batch")
        assert best is not None
        best_workers = best.config.split(", ")[-1]
        workers = int(best_workers.split()[0])
        singles = json_bodies(self.rows[: plan.single_requests], 1)
        own_tokens: list[str | None] = [self.robot_tokens[row[0]] for row in self.rows[: plan.single_requests]]
        # The cost of authentication: the same loads with FLEET_AUTH=off, side by side. The single-reading phases
        # are each run once unmeasured first, so both compare warm processes.
        no_tokens: list[str | None] = [None] * len(singles)
        largest = max(plan.batch_sizes)
        with api_server(self.database_url, workers, ONE_GATEWAY | {"FLEET_AUTH": "off"}) as (port, pid):
            config = f"{largest}/POST, {max(plan.batch_connections)} conn, {workers} worker(s), auth off"
            self.api_run(
                port,
                pid,
                bodies[largest],
                len(self.rows),
                max(plan.batch_connections),
                "API batch",
                config,
                [None] * len(bodies[largest]),
            )
            config = f"1/POST, {SINGLE_CONNECTIONS} conn, {workers} worker(s), auth off"
            self.api_run(
                port, pid, singles, len(singles), SINGLE_CONNECTIONS, "API single", config, no_tokens, warm_up=True
            )
        with api_server(self.database_url, workers, ONE_GATEWAY) as (port, pid):
            config = f"1/POST, {SINGLE_CONNECTIONS} conn, {workers} worker(s)"
            self.api_run(
                port, pid, singles, len(singles), SINGLE_CONNECTIONS, "API single", config, own_tokens, warm_up=True
            )

    def fleet_singles(self) -> None:
        """The single readings again, each with its own robot's token, against a server started with `make up`'s
        defaults (workers, limits, the access log written to a file): the first pass at once after start, every
        token new to each process, then a second."""
        with deployed_api_server(self.database_url) as (port, pid):
            for temperature in FLEET_PASSES:
                self.fleet_pass(port, pid, temperature)

    def fleet_pass(self, port: int, pid: int, temperature: str) -> None:
        """One pass of the fleet's single readings, each POSTed with its own robot's token."""
        count = self.plan.single_requests
        singles = json_bodies(self.rows[:count], 1)
        tokens: list[str | None] = [self.robot_tokens[row[0]] for row in self.rows[:count]]
        workers = load_settings().worker_count
        config = f"1/POST, {SINGLE_CONNECTIONS} conn, make up's defaults ({workers} worker(s)), {temperature}"
        self.api_run(port, pid, singles, count, SINGLE_CONNECTIONS, FLEET_SINGLE, config, tokens)

    def mqtt_singles(self) -> None:
        """The same single readings over MQTT: each of the fleet's robots on its own connection with its own token,
        one reading per QoS 1 message, the next after the service's ack (sent after commit); Mosquitto and the
        service started as `make up` starts them."""
        count = self.plan.single_requests
        rows = self.rows[:count]
        by_robot: dict[str, list[bytes]] = {}
        for row, body in zip(rows, json_bodies(rows, 1), strict=True):
            by_robot.setdefault(row[0], []).append(body)
        robots = [(robot_id, self.robot_tokens[robot_id], readings) for robot_id, readings in by_robot.items()]
        workers = load_settings().worker_count
        with (
            mqtt_broker(self.database_url) as broker,
            deployed_api_server(self.database_url, broker.service_settings()) as (_, pid),
        ):
            time.sleep(SUBSCRIBER_CONNECTED_S)
            for rate_hz in MQTT_PACES_HZ:
                asyncio.run(self.reset())
                meter = CpuMeter(
                    {"postgres": postgres_pids, "api": lambda: descendants(pid), "mosquitto": lambda: [broker.pid()]}
                )
                load = run_mqtt_load(
                    "127.0.0.1", broker.port, robots, LOADGEN_PROCESSES, on_connected=meter.start, rate_hz=rate_hz
                )
                cpu = meter.stop() | {"loadgen": round(load.cpu_s, 2)}
                acked = load.accepted + load.duplicates
                stored = asyncio.run(self.stored_rows())
                verified = load.requests == count and load.duplicates == 0 and stored == count == acked
                pace = f"{rate_hz:g} Hz a robot" if rate_hz else "as fast as acked"
                config = f"1/message, QoS 1, {len(robots)} robots, {pace}, make up's defaults ({workers} worker(s))"
                measured = Measurement(MQTT_SINGLE, config, acked, load.elapsed_s, verified, cpu, **_latencies(load))
                self.record(measured)

    def influx_phases(self) -> str | None:
        if reason := influxd_missing_reason():
            self.say(f"  InfluxDB skipped: {reason}")
            return reason
        bodies = line_protocol_bodies(self.rows, INFLUX_LINES_PER_REQUEST)
        with influx_server() as (port, pid, _root):
            for connections in self.plan.influx_connections:
                influx_query(port, "DROP DATABASE fleet")
                influx_query(port, "CREATE DATABASE fleet")
                requests = [build_post("/write?db=fleet&precision=u", body) for body in bodies]
                meter = CpuMeter({"influxd": lambda: [pid]})
                meter.start()
                load = run_load("127.0.0.1", port, requests, connections, LOADGEN_PROCESSES)
                cpu = meter.stop() | {"loadgen": round(load.cpu_s, 2)}
                stored = _influx_count(influx_query(port, "SELECT count(latitude) FROM telemetry", "fleet"))
                verified = load.statuses == {204: len(requests)} and stored == len(self.rows)
                config = f"{INFLUX_LINES_PER_REQUEST}/POST, {connections} conn"
                self.record(Measurement("InfluxDB", config, len(self.rows), load.elapsed_s, verified, cpu))
            self.influx_singles(port, pid)
        return None

    def influx_singles(self, port: int, pid: int) -> None:
        """The peer of the API's single-reading POSTs: one line-protocol point per POST, as many, as many
        connections."""
        count = self.plan.single_requests
        influx_query(port, "DROP DATABASE fleet")
        influx_query(port, "CREATE DATABASE fleet")
        requests = [
            build_post("/write?db=fleet&precision=u", body) for body in line_protocol_bodies(self.rows[:count], 1)
        ]
        meter = CpuMeter({"influxd": lambda: [pid]})
        meter.start()
        load = run_load("127.0.0.1", port, requests, SINGLE_CONNECTIONS, LOADGEN_PROCESSES)
        cpu = meter.stop() | {"loadgen": round(load.cpu_s, 2)}
        stored = _influx_count(influx_query(port, "SELECT count(latitude) FROM telemetry", "fleet"))
        verified = load.statuses == {204: count} and stored == count
        config = f"1/POST, {SINGLE_CONNECTIONS} conn"
        self.record(Measurement(INFLUX_SINGLE, config, count, load.elapsed_s, verified, cpu, **_latencies(load)))

    def run(self) -> dict[str, Any]:
        plan = self.plan
        self.say(f"generating {plan.robots * plan.per_robot:,} readings from {plan.robots} simulated robots")
        # BENCH_WITH_FIELDS=1: every reading also carries a four-key ``fields`` object (see NOTES.md).
        self.rows = generate_rows(plan.robots, plan.per_robot, with_fields=os.environ.get("BENCH_WITH_FIELDS") == "1")
        asyncio.run(self.prepare_database())
        machine = asyncio.run(describe_machine(self.database_url))
        self.say(f"machine: {machine_line(machine)}")
        influx_skipped = None
        for repetition in range(1, plan.repetitions + 1):
            self.say(f"repetition {repetition} of {plan.repetitions}, phase 1: COPY ceiling")
            for connections in (1, 2):
                asyncio.run(self.copy_ceiling(connections))
            self.say("phase 2-3: API batch and single")
            self.api_phases()
            self.say("phase 3b: single readings from the fleet, as `make up` starts the service")
            self.fleet_singles()
            self.say("phase 3c: the fleet's single readings over MQTT, acknowledged after commit")
            self.mqtt_singles()
            self.say("phase 4: InfluxDB peer")
            influx_skipped = self.influx_phases()
        return summarise(machine, plan, self.results, influx_skipped)


async def _truncate(conn: asyncpg.Connection, statement: str) -> None:
    """A reset's TRUNCATE, tried again when it deadlocked with work of the database's or the server's."""
    for attempt in range(TRUNCATE_ATTEMPTS):
        try:
            await conn.execute(statement)
            return
        except asyncpg.DeadlockDetectedError:
            if attempt == TRUNCATE_ATTEMPTS - 1:
                raise


def _latencies(load: LoadResult) -> dict[str, float]:
    return {"p50_ms": load.percentile_ms(50), "p95_ms": load.percentile_ms(95), "p99_ms": load.percentile_ms(99)}


def _influx_count(result: dict[str, Any]) -> int:
    try:
        return int(result["results"][0]["series"][0]["values"][0][1])
    except (KeyError, IndexError, TypeError):
        return 0


def _median_runs(results: list[Measurement]) -> dict[tuple[str, str], Measurement]:
    """Each (method, configuration)'s median run over the repetitions."""
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for m in results:
        groups.setdefault((m.method, m.config), []).append(m)
    return {key: sorted(runs, key=lambda m: m.rows_per_s)[(len(runs) - 1) // 2] for key, runs in groups.items()}


def _medians_by_last(results: list[Measurement], method: str, separator: str) -> dict[str, Measurement]:
    """A method's median runs, by what follows the last ``separator`` of their configuration (cold, warm; off)."""
    return {config.rsplit(separator, 1)[-1]: m for (name, config), m in _median_runs(results).items() if name == method}


def _spread(results: list[Measurement]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[float]] = {}
    for m in results:
        groups.setdefault((m.method, m.config), []).append(m.rows_per_s)
    return [
        {
            "method": method,
            "config": config,
            "runs": len(rates),
            "min": round(min(rates)),
            "median": round(statistics.median(rates)),
            "max": round(max(rates)),
            "spread_pct": round(100 * (max(rates) - min(rates)) / statistics.median(rates), 1),
        }
        for (method, config), rates in groups.items()
    ]


def _best(results: list[Measurement], method: str) -> Measurement | None:
    """A method's best configuration by its median run, as the product runs by default: authentication on."""
    candidates = [
        m for (name, config), m in _median_runs(results).items() if name == method and "auth off" not in config
    ]
    return max(candidates, key=lambda m: m.rows_per_s) if candidates else None


def summarise(
    machine: dict[str, Any], plan: Plan, results: list[Measurement], influx_skipped: str | None
) -> dict[str, Any]:
    ceiling, batch = _best(results, "COPY"), _best(results, "API batch")
    single, influx = _best(results, "API single"), _best(results, "InfluxDB")
    influx_single = _best(results, INFLUX_SINGLE)
    assert ceiling and batch and single
    # API CPU per stored row in the best batch configuration (all API processes, seconds -> microseconds).
    batch_us_per_row = round(batch.cpu_s.get("api", 0.0) / batch.rows * 1e6, 2)
    fleet = _fleet_single(results, influx_single)
    mqtt = _mqtt_single(results, influx_single)
    summary: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "plan": plan.__dict__,
        "copy_ceiling_rows_per_s": round(ceiling.rows_per_s),
        "api_batch_rows_per_s": round(batch.rows_per_s),
        "api_batch_config": batch.config,
        "api_single_rows_per_s": round(single.rows_per_s),
        "api_single_p99_ms": single.p99_ms,
        "api_batch_cpu_us_per_row": batch_us_per_row,
        "influxdb_rows_per_s": round(influx.rows_per_s) if influx else None,
        "influxdb_single_rows_per_s": round(influx_single.rows_per_s) if influx_single else None,
        "influxdb_single_p99_ms": influx_single.p99_ms if influx_single else None,
        "influxdb_skipped": influx_skipped,
        "rows_verified": all(m.verified for m in results),
        "ratios": {
            "api_batch_over_copy_ceiling": round(batch.rows_per_s / ceiling.rows_per_s, 3),
            "api_batch_over_influxdb": round(batch.rows_per_s / influx.rows_per_s, 3) if influx else None,
            "api_single_over_influxdb_single": (
                round(single.rows_per_s / influx_single.rows_per_s, 3) if influx_single else None
            ),
        },
        "targets": {
            "api_batch >= 0.75 x copy_ceiling": batch.rows_per_s >= 0.75 * ceiling.rows_per_s,
            "api_batch >= 1.2 x influxdb": batch.rows_per_s >= 1.2 * influx.rows_per_s if influx else None,
            "api_batch >= 0.6 x copy_ceiling": batch.rows_per_s >= 0.6 * ceiling.rows_per_s,
            "api_batch <= 1.5 us API CPU per row": batch_us_per_row <= 1.5,
            "api_single >= 20000 rows/s": single.rows_per_s >= 20_000,
            "api_single p99 <= 20 ms": (single.p99_ms or 1e9) <= 20,
            **_fleet_targets(fleet),
            **_mqtt_targets(mqtt),
        },
        "fleet_single": fleet,
        "mqtt_single": mqtt,
        "alert_rules": _alert_rules_cost(results),
        "rollups": _rollups_cost(results),
        "spread": _spread(results),
        "runs": [m.to_json() for m in results],
    }
    return summary


def _fleet_single(results: list[Measurement], influx_single: Measurement | None) -> dict[str, Any] | None:
    """The fleet's single readings, cold and warm (median runs), each against InfluxDB's single-point writes."""
    medians = _medians_by_last(results, FLEET_SINGLE, ", ")
    if not medians:
        return None
    return {
        temperature: {
            "config": m.config,
            "rows_per_s": round(m.rows_per_s),
            "p50_ms": m.p50_ms,
            "p99_ms": m.p99_ms,
            "api_cpu_us_per_post": round(m.cpu_s.get("api", 0.0) / m.rows * 1e6, 1),
            "over_influxdb_single": round(m.rows_per_s / influx_single.rows_per_s, 3) if influx_single else None,
        }
        for temperature, m in medians.items()
    }


def _fleet_targets(fleet: dict[str, Any] | None) -> dict[str, bool | None]:
    """Issue 25's targets, on the warm pass: at least half InfluxDB's single-point writes, p99 within 20 ms."""
    warm = (fleet or {}).get("warm")
    if warm is None:
        return {}
    ratio = warm["over_influxdb_single"]
    return {
        "fleet single >= 0.5 x influxdb single": None if ratio is None else ratio >= 0.5,
        "fleet single p99 <= 20 ms": (warm["p99_ms"] or 1e9) <= 20,
    }


def _mqtt_single(results: list[Measurement], influx_single: Measurement | None) -> dict[str, Any] | None:
    """The fleet's single readings over MQTT (the median runs), as fast as acked and paced, each against InfluxDB's
    single-point writes."""
    medians = {config: m for (method, config), m in _median_runs(results).items() if method == MQTT_SINGLE}
    if not medians:
        return None
    return {
        median.config.split(", ")[3]: {
            "config": median.config,
            "rows_per_s": round(median.rows_per_s),
            "p50_ms": median.p50_ms,
            "p99_ms": median.p99_ms,
            "cpu_us_per_reading": {name: round(cpu / median.rows * 1e6, 1) for name, cpu in median.cpu_s.items()},
            "over_influxdb_single": round(median.rows_per_s / influx_single.rows_per_s, 3) if influx_single else None,
        }
        for median in medians.values()
    }


def _mqtt_targets(mqtt: dict[str, Any] | None) -> dict[str, bool | None]:
    """Issue 22's targets: as fast as acked, at least twice InfluxDB's single-point writes; p99 from publish to ack
    within 50 ms, both as fast as acked and at a robot's pace."""
    if not mqtt:
        return {}
    fastest = mqtt.get("as fast as acked")
    ratio = fastest["over_influxdb_single"] if fastest else None
    targets: dict[str, bool | None] = {"mqtt single >= 2 x influxdb single": None if ratio is None else ratio >= 2}
    for pace, m in mqtt.items():
        targets[f"mqtt single p99 <= 50 ms ({pace})"] = (m["p99_ms"] or 1e9) <= 50
    return targets


def _pair(results: list[Measurement], method: str, baseline_suffix: str) -> tuple[Measurement, Measurement] | None:
    """The median runs of a side-by-side pair: the one whose configuration ends with ``baseline_suffix``, then the
    other."""
    medians = [m for (name, _), m in _median_runs(results).items() if name == method]
    baseline = next((m for m in medians if m.config.endswith(baseline_suffix)), None)
    other = next((m for m in medians if not m.config.endswith(baseline_suffix)), None)
    return None if baseline is None or other is None else (baseline, other)


def _alert_rules_cost(results: list[Measurement]) -> dict[str, Any] | None:
    """Batch ingest with 100 alert rules against none, by the median runs of the side-by-side pair."""
    if (pair := _pair(results, ALERTS_METHOD, " 0 alert rules")) is None:
        return None
    without, with_rules = pair
    ratio = with_rules.rows_per_s / without.rows_per_s
    return {
        "without_rows_per_s": round(without.rows_per_s),
        "with_rules_rows_per_s": round(with_rules.rows_per_s),
        "with_rules_config": with_rules.config,
        "ratio": round(ratio, 3),
        "within_10_pct": ratio >= 0.9,
    }


def _rollups_cost(results: list[Measurement]) -> dict[str, Any] | None:
    """Batch ingest with the minutes refreshed every second, and with the quarter hours' passes too, each against
    neither, by the median runs of the side-by-side phases."""
    medians = _medians_by_last(results, ROLLUPS_METHOD, " rollups ")
    if "off" not in medians or len(medians) < 2:
        return None
    off = medians.pop("off")
    return {
        "off_rows_per_s": round(off.rows_per_s),
        "modes": {
            mode: {
                "rows_per_s": round(on.rows_per_s),
                "ratio": round(on.rows_per_s / off.rows_per_s, 3),
                "postgres_us_per_row": round(
                    (on.cpu_s.get("postgres", 0.0) - off.cpu_s.get("postgres", 0.0)) / on.rows * 1e6, 2
                ),
            }
            for mode, on in medians.items()
        },
    }


def main() -> None:
    report.run_cli(
        __doc__ or "",
        "a smaller run: ~5 s phases, three repetitions, about 5 minutes",
        "ingest",
        lambda quick, console: Bench(QUICK if quick else FULL, console).run(),
        report.ingest_markdown,
        report.ingest_chart,
    )


if __name__ == "__main__":
    main()
