"""``python -m benchmarks.inprocess [--fields]``: the API's ingest path without HTTP, as CPU per row of this process.

Decodes 1000-reading bodies and group-commits them through the real Ingestor into the ``fleet_bench`` database
(`make bench` creates it), 32 requests in flight; prints CPU microseconds per row and rows per second.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from app.model.principal import ANONYMOUS
from app.platform.migrations import apply_migrations, create_database_if_missing
from app.platform.pool import create_pool
from app.platform.settings import load_settings, replace_settings
from app.telemetry.buffer import Ingestor
from app.telemetry.latest import LatestState
from benchmarks.dataset import generate_rows, json_bodies

RESET = "TRUNCATE telemetry, telemetry_1m, telemetry_15m, robot_latest"  # benchmark-only statement
IN_FLIGHT = 32


async def measure(with_fields: bool, robots: int, per_robot: int) -> None:
    base = load_settings()
    url = base.database.database_url.rsplit("/", 1)[0] + "/fleet_bench"
    await create_database_if_missing(url)
    await apply_migrations(url)
    settings = replace_settings(base, database_url=url)
    rows = generate_rows(robots, per_robot, with_fields=with_fields)
    bodies = json_bodies(rows, 1000)
    pool = await create_pool(settings.database)
    await pool.execute(RESET)
    latest = LatestState(pool, pool, settings.ingest.latest_interval_ms)
    latest.start()
    ingestor = Ingestor(pool, settings.ingest, latest)
    ingestor.start()

    async def send() -> None:
        while bodies:
            await ingestor.ingest_body(bodies.pop(), ANONYMOUS)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(send() for _ in range(IN_FLIGHT)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await ingestor.close()
    await latest.close()
    await pool.close()
    label = "with fields" if with_fields else "without fields"
    print(f"{label}: {cpu / len(rows) * 1e6:.2f} us CPU per row, {len(rows) / wall:,.0f} rows/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fields", action="store_true", help="every reading carries a four-key fields object")
    parser.add_argument("--robots", type=int, default=200)
    parser.add_argument("--per-robot", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(measure(args.fields, args.robots, args.per_robot))


if __name__ == "__main__":
    main()
