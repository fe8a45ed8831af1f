"""``python -m benchmarks.queries``: p50/p99 of each read endpoint over a large dataset loaded with COPY.

The data comes from the simulator's fleet model: ``robots`` robots, one reading every 10 s each. Every query runs
twice, side by side in one run: on the row store, then after every chunk has gone into the columnstore (as the
policy does once a chunk is a day old), there first cold (PostgreSQL restarted, the OS page cache dropped), then
warm.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
from rich.console import Console

from app.alerts import store as alerts
from app.auth import provisioning as admin
from app.auth import queries as auth_sql
from app.fleet import queries as fleet_sql
from app.fleet import store as fleet
from app.platform.migrations import apply_migrations, create_database_if_missing
from app.platform.settings import load_settings
from app.rollups import store as rollups
from app.telemetry import queries as telemetry_sql
from app.telemetry import store as telemetry
from app.telemetry.latest import follow_latest
from benchmarks import report
from benchmarks.dataset import copy_fleet, iter_rows, line_protocol_bodies
from benchmarks.loadgen import build_get, build_post, run_load
from benchmarks.machine import describe_machine, machine_line
from benchmarks.servers import ROOT, api_server, influx_query, influx_server, influxd_missing_reason
from benchmarks.storage import CONVERT_ALL

BENCH_DATABASE = "fleet_queries_bench"
STEP_S = 10.0
COPY_ROWS_PER_TRANSACTION = 50_000

# Benchmark-only statements.
# The database's minute refreshes are paused: the benchmark refreshes once, after the load, and times it.
RESET_ALL = (
    "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs; "
    "TRUNCATE telemetry, telemetry_1m, telemetry_15m, robots, robot_latest, credentials RESTART IDENTITY; "
    "UPDATE rollup_state SET rolled_up_xid = NULL, status_gap_s = NULL, refreshed_xid = NULL, refreshed_to = NULL"
)
REFRESH_MINUTES = "CALL refresh_minutes(NULL, NULL)"
ANALYZE = "VACUUM ANALYZE telemetry, telemetry_1m, robots, robot_latest"
COUNT_TELEMETRY = "SELECT count(*) FROM telemetry"
TAKE_RECENT = f"DELETE FROM telemetry WHERE time >= $1 RETURNING {', '.join(telemetry_sql.TELEMETRY_COLUMNS)}"
FORGET_ROLLED_UP = """
WITH since AS (SELECT time_bucket('15 minutes', $1::timestamptz) AS at),
     periods AS (DELETE FROM telemetry_15m WHERE period >= (SELECT at FROM since))
UPDATE telemetry SET stored_at = now() WHERE time >= (SELECT at FROM since)
"""


@dataclass(frozen=True)
class Plan:
    robots: int
    per_robot: int
    reps: int
    heavy_reps: int  # for the fleet-wide scans (daily activity, distance)


FULL = Plan(robots=1000, per_robot=10_000, reps=300, heavy_reps=5)
QUICK = Plan(robots=1000, per_robot=1000, reps=100, heavy_reps=3)


@dataclass(frozen=True)
class Query:
    name: str
    paths: list[str]  # cycled through: different robots, so no single row stays hot
    target_p99_ms: float | None = None
    heavy: bool = False


async def load_dataset(database_url: str, plan: Plan, console: Console) -> tuple[int, datetime]:
    await create_database_if_missing(database_url)
    await apply_migrations(database_url)
    end = datetime.now(UTC) - timedelta(minutes=1)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(RESET_ALL)
        started = time.monotonic()

        def report(loaded: int) -> None:
            if loaded % 1_000_000 < COPY_ROWS_PER_TRANSACTION:
                console.print(f"  loaded {loaded:,} rows ({loaded / (time.monotonic() - started):,.0f} rows/s)")

        await copy_fleet(conn, plan.robots, plan.per_robot, end, COPY_ROWS_PER_TRANSACTION, report, STEP_S)
        async with conn.transaction():  # the latest state, as the API's alert round follows the readings
            positions = await alerts.start_round(conn)
            assert positions is not None
            await follow_latest(conn, *positions)
            await alerts.finish_round(conn, positions[1])
        await conn.execute(ANALYZE)  # before the rollup pass, as a running service's statistics would be
        started = time.monotonic()
        await conn.execute(REFRESH_MINUTES, timeout=3600)
        refreshed_s = time.monotonic() - started
        started = time.monotonic()
        async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
            await rollups.roll_up_stored(pool, load_settings().query.max_status_gap_s)
        minutes = await conn.fetchval("SELECT count(*) FROM telemetry_1m")
        periods = await conn.fetchval("SELECT count(*) FROM telemetry_15m")
        console.print(
            f"  the minute aggregate refreshed in {refreshed_s:.1f} s ({minutes:,} robot-minutes), the quarter hours"
            f" rolled up in {time.monotonic() - started:.1f} s ({periods:,} robot-quarter-hours)"
        )
        await conn.execute(ANALYZE)
        return int(await conn.fetchval(COUNT_TELEMETRY)), end
    finally:
        await conn.close()


def build_queries(robot_ids: list[str], end: datetime, span: timedelta) -> list[Query]:
    rng = random.Random(1)
    busiest_day = (end - span / 2).date()  # the day holding the middle of the data
    sample = rng.sample(robot_ids, min(50, len(robot_ids)))
    day_start = (end - timedelta(days=1)).replace(microsecond=0)

    def q(params: dict[str, str]) -> str:
        return "?" + urlencode(params)

    day = {"since": day_start.isoformat(), "until": end.isoformat()}
    return [
        Query("fleet latest state: GET /robots", ["/robots"], 10.0),
        Query(
            "one robot's day in 1-minute buckets",
            [f"/telemetry/{quote(r)}" + q({"bucket": "1m"} | day) for r in sample],
            50.0,
        ),
        Query("page of 100 newest readings", [f"/telemetry/{quote(r)}?limit=100" for r in sample], 5.0),
        Query("next page (keyset cursor)", [], 5.0),  # filled in run(): needs a real cursor
        Query("low battery (< 20 %)", ["/fleet/low-battery?below=20"]),
        Query("offline (no reading for 5 min)", ["/fleet/offline?stale_after=5m"]),
        Query("stationary (< 5 m in 10 min)", ["/fleet/stationary?within_m=5&window=10m"]),
        Query(
            "distance travelled, whole fleet, last hour",
            ["/fleet/distance" + q({"since": (end - timedelta(hours=1)).isoformat()})],
            heavy=True,
        ),
        Query(
            "daily activity, whole fleet, one day",
            ["/fleet/daily-activity" + q({"day": busiest_day.isoformat()})],
            heavy=True,
        ),
        Query("one robot's day as CSV", [f"/telemetry/{quote(r)}/export.csv" + q(day) for r in sample]),
    ]


def measure(port: int, query: Query, reps: int, token: str) -> dict[str, Any]:
    paths = [query.paths[i % len(query.paths)] for i in range(reps)]
    run_load("127.0.0.1", port, [build_get(p, token=token) for p in paths[: min(5, reps)]], 1, 1)  # warm-up
    load = run_load("127.0.0.1", port, [build_get(p, token=token) for p in paths], 1, 1)  # latency, not load
    p99 = load.percentile_ms(99)
    return {
        "query": query.name,
        "example": query.paths[0],
        "reps": reps,
        "p50_ms": load.percentile_ms(50),
        "p99_ms": p99,
        "target_p99_ms": query.target_p99_ms,
        "met": None if query.target_p99_ms is None else p99 < query.target_p99_ms,
        "all_200": load.statuses == {200: reps},
    }


async def buckets_raw_and_rolled_up(
    database_url: str, robot_ids: list[str], end: datetime, reps: int
) -> dict[str, Any]:
    """A robot's last 30 days in 1-hour buckets, from the readings and from the rollup, side by side: the two
    statements alternate on one connection, each robot asked both ways, and must give the same buckets."""
    until = end.replace(second=0, microsecond=0)
    since = until - timedelta(days=30)
    timings: dict[str, list[float]] = {"raw": [], "rollup": []}
    equal = True
    conn = await asyncpg.connect(database_url)
    try:
        keys = {r["robot_id"]: r["robot_key"] for r in await conn.fetch(auth_sql.SELECT_ROBOT_KEYS, robot_ids)}
        for i in range(reps):
            key = keys[robot_ids[i % len(robot_ids)]]
            args = (key, timedelta(hours=1), "UTC", since, until)
            answers = {}
            started = time.perf_counter()
            answers["raw"] = await conn.fetch(telemetry_sql.SELECT_BUCKETS, *args)
            timings["raw"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            answers["rollup"] = await telemetry.fetch_rolled_up_buckets(conn, *args)
            timings["rollup"].append((time.perf_counter() - started) * 1000)
            equal &= [r["readings"] for r in answers["raw"]] == [r["readings"] for r in answers["rollup"]]
    finally:
        await conn.close()

    return {
        "query": "a robot's 30 days in 1-hour buckets (SQL, same connection)",
        "reps": reps,
        "raw_p50_ms": _percentile(timings["raw"], 0.5),
        "raw_p99_ms": _percentile(timings["raw"], 0.99),
        "rollup_p50_ms": _percentile(timings["rollup"], 0.5),
        "rollup_p99_ms": _percentile(timings["rollup"], 0.99),
        "raw_first_ms": round(timings["raw"][0], 2),
        "rollup_first_ms": round(timings["rollup"][0], 2),
        "same_counts": equal,
    }


async def fleet_raw_and_rolled_up(
    database_url: str, day: date, reps: int, with_raw: bool = True
) -> list[dict[str, Any]]:
    """The whole fleet's activity and distance over one day, from the readings alone and as the service answers
    (the quarter-hour rollup plus the readings it lacks), alternating on one connection; the answers compared."""
    since = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    until, now, gap_s = since + timedelta(days=1), datetime.now(UTC), load_settings().query.max_status_gap_s
    results = []
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:

        async def raw_activity() -> dict[str, dict[str, float]]:
            return fleet.seconds_by_robot(await pool.fetch(fleet_sql.SELECT_STATUS_SECONDS, since, until, gap_s, now))

        async def raw_distances() -> list[tuple[str, int, float]]:
            return [(r[0], r[1], r[2]) for r in await pool.fetch(fleet_sql.SELECT_DISTANCES, since, until)]

        pairs: list[tuple[str, Any, Any]] = [
            ("daily activity, whole fleet, one UTC day", raw_activity,
             lambda: fleet.fetch_status_seconds(pool, since, until, gap_s, now)),
            ("distance, whole fleet, one UTC day", raw_distances, lambda: fleet.fetch_distances(pool, since, until)),
        ]  # fmt: skip
        for name, raw, rolled in pairs:
            timings: dict[str, list[float]] = {"raw": [], "rollup": []}
            answers: dict[str, Any] = {}
            ways = (("raw", raw), ("rollup", rolled)) if with_raw else (("rollup", rolled),)
            for _ in range(reps):
                for way, fetch in ways:
                    started = time.perf_counter()
                    answers[way] = await fetch()
                    timings[way].append((time.perf_counter() - started) * 1000)
            same = _close(answers["raw"], answers["rollup"]) if with_raw else None
            results.append(
                {"query": name, "reps": reps, "same_answers": same}
                | {f"{way}_p50_ms": _percentile(t, 0.5) for way, t in timings.items() if t}
                | {f"{way}_max_ms": _percentile(t, 1) for way, t in timings.items() if t}
            )
    return results


def cold_database() -> None:
    """PostgreSQL restarted and the OS page cache dropped: the next query reads from disk (root only; without it,
    only the restart: PostgreSQL's own buffers are empty, the OS cache is not)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "db.sh"), "down"], check=True, capture_output=True)
    if os.geteuid() == 0:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    subprocess.run(["bash", str(ROOT / "scripts" / "db.sh"), "up"], check=True, capture_output=True)


async def convert_all(database_url: str) -> tuple[int, float]:
    """Every chunk of readings into the columnstore, as the policy does to each once it is a day old."""
    conn = await asyncpg.connect(database_url)
    try:
        started = time.monotonic()
        chunks = int(await conn.fetchval(CONVERT_ALL, timeout=3600))
        await conn.execute(ANALYZE)
        return chunks, time.monotonic() - started
    finally:
        await conn.close()


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 of themselves (sums taken in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def steady_pass_ms(database_url: str, end: datetime) -> dict[str, float]:
    """What a rollup pass costs once the service runs: the data's last 10 s of readings (one a robot) are taken out
    and the rollups of their quarter hours rebuilt without them (timed: each robot's current quarter hour rolled up
    from its readings, what every pass did before it appended), then they are put back and a pass is timed. Changes
    the benchmark's data (by 10 s)."""
    recent_since = end - timedelta(seconds=10)
    gap_s = load_settings().query.max_status_gap_s
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
            recent = [tuple(row) for row in await conn.fetch(TAKE_RECENT, recent_since)]
            await conn.execute(FORGET_ROLLED_UP, recent_since)  # the rest of their periods: as if stored now
            started = time.perf_counter()
            await rollups.roll_up_stored(pool, gap_s)
            again_ms = (time.perf_counter() - started) * 1000
            await conn.copy_records_to_table(
                telemetry_sql.TELEMETRY_TABLE, records=recent, columns=telemetry_sql.TELEMETRY_COLUMNS
            )
            started = time.perf_counter()
            await rollups.roll_up_stored(pool, gap_s)
            append_ms = (time.perf_counter() - started) * 1000
    finally:
        await conn.close()
    return {"readings": len(recent), "periods_again_ms": round(again_ms, 1), "append_ms": round(append_ms, 1)}


def influx_last(rows_total: int, plan: Plan, end: datetime, console: Console) -> dict[str, Any] | str:
    if reason := influxd_missing_reason():
        return reason
    with influx_server() as (port, _pid, _root):
        influx_query(port, "CREATE DATABASE fleet")
        for bodies in _batched_rounds(plan, end, 5000):
            run_load("127.0.0.1", port, [build_post("/write?db=fleet&precision=u", b) for b in bodies], 4, 2)
        counted = influx_query(port, "SELECT count(latitude) FROM telemetry", "fleet")
        stored = int(counted["results"][0]["series"][0]["values"][0][1])  # type: ignore[index]
        statement = "SELECT last(*) FROM telemetry GROUP BY robot_id"
        path = "/query?" + urlencode({"db": "fleet", "q": statement})
        result = measure(port, Query("InfluxDB: " + statement, [path]), min(plan.reps, 50), token="")
        result["rows_verified"] = stored == rows_total
        console.print(f"  InfluxDB holds {stored:,} of {rows_total:,} rows; p50 {result['p50_ms']} ms")
        return result


def _batched_rounds(plan: Plan, end: datetime, lines: int) -> list[list[bytes]]:
    """Line-protocol bodies of the same rows, grouped so that one group is ~1M rows."""
    groups: list[list[bytes]] = []
    pending: list[Any] = []
    for rows in iter_rows(plan.robots, plan.per_robot, end=end, step_s=STEP_S):
        pending.extend(rows)
        if len(pending) >= 1_000_000:
            groups.append(line_protocol_bodies(pending, lines))
            pending = []
    if pending:
        groups.append(line_protocol_bodies(pending, lines))
    return groups


def run(plan: Plan, console: Console) -> dict[str, Any]:
    server = load_settings().database.database_url.rsplit("/", 1)[0]
    database_url = f"{server}/{BENCH_DATABASE}"
    console.print(f"loading {plan.robots * plan.per_robot:,} readings ({plan.robots} robots, every {STEP_S:.0f} s)")
    started = time.monotonic()
    rows, end = asyncio.run(load_dataset(database_url, plan, console))
    load_s = time.monotonic() - started
    console.print(f"  {rows:,} rows in {load_s:.0f} s")
    machine = asyncio.run(describe_machine(database_url))
    console.print(f"machine: {machine_line(machine)}")
    robot_ids = [row[0] for row in next(iter_rows(plan.robots, 1))]
    token = asyncio.run(_reader_key(database_url))
    # Sequential requests from one key: no rate limit should pace a latency measurement.
    unlimited = {"FLEET_KEY_REQUESTS_PER_S": "1000000", "FLEET_KEY_BURST": "1000000"}
    queries = build_queries(robot_ids, end, timedelta(seconds=plan.per_robot * STEP_S))
    busiest_day = (end - timedelta(seconds=plan.per_robot * STEP_S) / 2).date()
    console.print("row store")
    row_store = []
    with api_server(database_url, 1, unlimited) as (port, _pid):
        for query in queries:
            if not query.paths:  # the keyset page: take real cursors from first pages
                query = _with_cursors(port, query, robot_ids, token)
            result = measure(port, query, plan.heavy_reps if query.heavy else plan.reps, token)
            console.print(f"  {result['query']}: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
            row_store.append(result)
    row_rollup = asyncio.run(buckets_raw_and_rolled_up(database_url, robot_ids, end, min(plan.reps, 100)))
    console.print(f"  {row_rollup['query']}: rollup p50 {row_rollup['rollup_p50_ms']} ms")
    row_fleet = asyncio.run(fleet_raw_and_rolled_up(database_url, busiest_day, plan.heavy_reps, with_raw=False))
    for pair in row_fleet:
        console.print(f"  {pair['query']}: rollup p50 {pair['rollup_p50_ms']} ms")
    # On the row store: the readings a pass meets are the newest, in the chunk not converted yet.
    upkeep = asyncio.run(steady_pass_ms(database_url, end))
    console.print(
        f"  a rollup pass for {upkeep['readings']:,} new readings: {upkeep['append_ms']} ms; rolling each robot's "
        f"current quarter hour up again instead: {upkeep['periods_again_ms']} ms"
    )
    chunks, convert_s = asyncio.run(convert_all(database_url))
    console.print(f"columnstore: {chunks} chunks converted in {convert_s:.0f} s; each query cold, then warm")
    results = []
    for query in queries:
        cold_database()
        with api_server(database_url, 1, unlimited) as (port, _pid):
            if not query.paths:
                query = _with_cursors(port, query, robot_ids, token)
            started = time.perf_counter()
            status = run_load("127.0.0.1", port, [build_get(query.paths[0], token=token)], 1, 1).statuses
            cold_ms = round((time.perf_counter() - started) * 1000, 1)
            result = measure(port, query, plan.heavy_reps if query.heavy else plan.reps, token)
            result |= {"cold_ms": cold_ms, "cold_200": status == {200: 1}}
        console.print(f"  {result['query']}: cold {cold_ms} ms, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
        results.append(result)
    cold_database()
    rollup = asyncio.run(buckets_raw_and_rolled_up(database_url, robot_ids, end, min(plan.reps, 100)))
    console.print(
        f"  {rollup['query']}: raw p50 {rollup['raw_p50_ms']} ms / p99 {rollup['raw_p99_ms']} ms, rollup p50 "
        f"{rollup['rollup_p50_ms']} ms / p99 {rollup['rollup_p99_ms']} ms, same counts {rollup['same_counts']}"
        f" (the first of each cold: {rollup['raw_first_ms']} and {rollup['rollup_first_ms']} ms)"
    )
    cold_database()
    fleet_rollup = asyncio.run(fleet_raw_and_rolled_up(database_url, busiest_day, plan.heavy_reps))
    for pair in fleet_rollup:
        console.print(
            f"  {pair['query']}: raw p50 {pair['raw_p50_ms']} ms, rollup p50 {pair['rollup_p50_ms']} ms / max "
            f"{pair['rollup_max_ms']} ms, same answers {pair['same_answers']}"
        )
    console.print("InfluxDB peer")
    influx = influx_last(rows, plan, end, console)
    latest = results[0]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "rows": rows,
        "robots": plan.robots,
        "load_s": round(load_s, 1),
        "queries": results,
        "buckets_raw_vs_rollup": rollup,
        "fleet_raw_vs_rollup": fleet_rollup,
        "row_store": {"queries": row_store, "buckets_rollup": row_rollup, "fleet_rollup": row_fleet},
        "columnstore_chunks": chunks,
        "convert_s": round(convert_s, 1),
        "rollup_pass": upkeep,
        "influxdb_last": influx if isinstance(influx, dict) else None,
        "influxdb_skipped": influx if isinstance(influx, str) else None,
        "influxdb_last_over_api_latest_p50": (
            round(influx["p50_ms"] / latest["p50_ms"], 2) if isinstance(influx, dict) else None
        ),
    }


async def _reader_key(database_url: str) -> str:
    """An operator key to read with, made as `make admin` makes one."""
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
        return (await admin.create_key(pool, admin.NewKey("bench reader", ["read", "export"]))).token


def _with_cursors(port: int, query: Query, robot_ids: list[str], token: str) -> Query:
    paths = []
    for robot_id in robot_ids[:20]:
        first_page = urllib.request.Request(
            f"http://127.0.0.1:{port}/telemetry/{quote(robot_id)}?limit=100",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(first_page) as response:
            cursor = json.loads(response.read())["next_cursor"]
        paths.append(f"/telemetry/{quote(robot_id)}?limit=100&cursor={cursor}")
    return Query(query.name, paths, query.target_p99_ms)


def main() -> None:
    report.run_cli(
        __doc__ or "",
        "1M rows instead of 10M; finishes in a few minutes",
        "queries",
        lambda quick, console: run(QUICK if quick else FULL, console),
        report.queries_markdown,
    )


if __name__ == "__main__":
    main()
