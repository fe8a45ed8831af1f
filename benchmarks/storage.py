"""Bytes per reading on disk: the row store against TimescaleDB's columnstore, for readings at 1 Hz over a day.

``python -m benchmarks.storage [--robots N] [--seconds S]`` loads seed-shaped readings (location, battery, voltage,
status, seq: the simulator's fleet model) into a scratch database, measures the readings' hypertable (table,
indexes and TOAST), converts every chunk as the columnstore policy would once it is a day old, and measures again.
Per-reading figures do not depend on the fleet's size: a chunk holds one segment per robot either way.
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

from app.db.migrations import apply_migrations, create_database_if_missing
from benchmarks.dataset import copy_fleet

DATABASE = "fleet_storage"
COPY_ROWS = 50_000
RESULTS = Path(__file__).resolve().parent / "results" / "storage.json"
HYPERTABLE_BYTES = "SELECT hypertable_size('telemetry')"
CONVERT_ALL = "SELECT count(compress_chunk(c, if_not_compressed => true)) FROM show_chunks('telemetry') AS c"
CHUNK_BYTES = """
SELECT coalesce(sum(before_compression_total_bytes), 0), coalesce(sum(after_compression_total_bytes), 0)
FROM chunk_compression_stats('telemetry')
"""


def database_url() -> str:
    base = os.environ.get("FLEET_DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/fleet")
    return base.rsplit("/", 1)[0] + "/" + DATABASE


async def load(conn: asyncpg.Connection, robots: int, seconds: int) -> int:
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    return await copy_fleet(conn, robots, seconds, end, COPY_ROWS)


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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.storage", description=__doc__)
    parser.add_argument("--robots", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=86_400)
    args = parser.parse_args()
    result = asyncio.run(measure(args.robots, args.seconds))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
