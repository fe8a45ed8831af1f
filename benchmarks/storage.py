"""Bytes per reading on disk: the row store against TimescaleDB's columnstore and InfluxDB 1.x's TSM files, for
readings at 1 Hz over a day.

``python -m benchmarks.storage [--robots N] [--seconds S]`` loads seed-shaped readings (location, battery, voltage,
status, seq: the simulator's fleet model) into a scratch database, measures the readings' hypertable (table,
indexes and TOAST), converts every chunk as the columnstore policy would once it is a day old, and measures again;
then writes the same points to InfluxDB (robot_id the tag, 5,000 lines a request), lets it compact them fully,
and measures its shard files. Per-reading figures do not depend on the fleet's size: a chunk holds one segment
per robot either way, and a shard one series per robot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from app.platform.migrations import apply_migrations, create_database_if_missing
from benchmarks.dataset import copy_fleet, iter_rows, line_protocol_bodies
from benchmarks.loadgen import build_post, run_load
from benchmarks.servers import influx_query, influx_server, influxd_missing_reason

DATABASE = "fleet_storage"
COPY_ROWS = 50_000
INFLUX_LINES = 5_000
# Snapshot the cache and compact a shard fully once it has had no write for a second (defaults: 10 min and 4 h),
# so the files measured are the ones a day-old shard settles into.
INFLUX_COLD = 'cache-snapshot-write-cold-duration = "1s"\ncompact-full-write-cold-duration = "1s"\n'
INFLUX_SETTLE_S = 3.0  # no change in the shard files for this long: compaction is over
RESULTS = Path(__file__).resolve().parent / "results" / "storage.json"
HYPERTABLE_BYTES = "SELECT hypertable_size('telemetry')"
CONVERT_ALL = "SELECT count(compress_chunk(c, if_not_compressed => true)) FROM show_chunks('telemetry') AS c"
CHUNK_BYTES = """
SELECT coalesce(sum(before_compression_total_bytes), 0), coalesce(sum(after_compression_total_bytes), 0)
FROM chunk_compression_stats('telemetry')
"""


def _end() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)


def database_url() -> str:
    base = os.environ.get("FLEET_DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/fleet")
    return base.rsplit("/", 1)[0] + "/" + DATABASE


async def load(conn: asyncpg.Connection, robots: int, seconds: int) -> int:
    return await copy_fleet(conn, robots, seconds, _end(), COPY_ROWS)


async def measure(robots: int, seconds: int) -> dict[str, Any]:
    url = database_url()
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    finally:
        await admin.close()
    await create_database_if_missing(url)
    await apply_migrations(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs")
        started = time.monotonic()
        readings = await load(conn, robots, seconds)
        load_s = time.monotonic() - started
        await conn.execute("VACUUM ANALYZE telemetry")
        row_store = int(await conn.fetchval(HYPERTABLE_BYTES))
        started = time.monotonic()
        chunks = int(await conn.fetchval(CONVERT_ALL))
        convert_s = time.monotonic() - started
        await conn.execute("VACUUM ANALYZE telemetry")
        columnstore = int(await conn.fetchval(HYPERTABLE_BYTES))
        before, after = (int(v) for v in await conn.fetchrow(CHUNK_BYTES))  # type: ignore[union-attr]
    finally:
        await conn.close()
    return {
        "robots": robots,
        "seconds": seconds,
        "readings": readings,
        "chunks": chunks,
        "load_s": round(load_s, 1),
        "convert_s": round(convert_s, 1),
        "row_store_bytes": row_store,
        "columnstore_bytes": columnstore,
        "row_store_bytes_per_reading": round(row_store / readings, 1),
        "columnstore_bytes_per_reading": round(columnstore / readings, 2),
        "smaller_by": round(1 - columnstore / row_store, 4),
        "chunk_stats_before_after": [before, after],
    }


def _tree_bytes(root: Path, suffix: str = "") -> int:
    return sum(f.stat().st_size for f in root.rglob(f"*{suffix}") if f.is_file())


def measure_influx(robots: int, seconds: int) -> dict[str, Any]:
    """The same points in InfluxDB 1.x: its shard files once fully compacted (TSM), and everything under its
    data and WAL directories."""
    with influx_server(INFLUX_COLD) as (port, _pid, root):
        influx_query(port, "CREATE DATABASE fleet")
        started = time.monotonic()
        points = 0
        batch: list[Any] = []
        for rows in iter_rows(robots, seconds, end=_end()):
            batch.extend(rows)
            if len(batch) >= 20 * INFLUX_LINES:
                bodies = line_protocol_bodies(batch, INFLUX_LINES)
                run_load("127.0.0.1", port, [build_post("/write?db=fleet&precision=u", b) for b in bodies], 4, 2)
                points += len(batch)
                batch = []
        if batch:
            bodies = line_protocol_bodies(batch, INFLUX_LINES)
            run_load("127.0.0.1", port, [build_post("/write?db=fleet&precision=u", b) for b in bodies], 4, 2)
            points += len(batch)
        load_s = time.monotonic() - started
        stored = influx_query(port, "SELECT count(battery_level) FROM telemetry", "fleet")
        counted = stored["results"][0]["series"][0]["values"][0][1]  # type: ignore[index]
        last, unchanged_since = -1, time.monotonic()
        while time.monotonic() - unchanged_since < INFLUX_SETTLE_S or _tree_bytes(root / "wal", ".wal") > 0:
            time.sleep(0.5)
            now = _tree_bytes(root / "data")
            if now != last:
                last, unchanged_since = now, time.monotonic()
        tsm = _tree_bytes(root / "data", ".tsm")
        on_disk = _tree_bytes(root / "data") + _tree_bytes(root / "wal")
    return {
        "points": points,
        "points_counted": counted,
        "load_s": round(load_s, 1),
        "tsm_bytes": tsm,
        "data_and_wal_bytes": on_disk,
        "tsm_bytes_per_reading": round(tsm / points, 2),
        "data_and_wal_bytes_per_reading": round(on_disk / points, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.storage", description=__doc__)
    parser.add_argument("--robots", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=86_400)
    args = parser.parse_args()
    result = asyncio.run(measure(args.robots, args.seconds))
    reason = influxd_missing_reason()
    result["influxdb"] = {"skipped": reason} if reason else measure_influx(args.robots, args.seconds)
    if reason is None:
        result["columnstore_to_influx_tsm"] = round(
            result["columnstore_bytes_per_reading"] / result["influxdb"]["tsm_bytes_per_reading"], 3
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
