"""The schema the migrations make, as one readable text: PostgreSQL's own dump of the public schema, and what
TimescaleDB keeps in its catalog (hypertables, the columnstore, the continuous aggregate, the jobs).

`python -m tests.support.schema DATABASE_URL > docs/schema.sql` writes it; a test compares a fresh database's
with the file, so the migrations and the file cannot drift apart."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg

HEADER = (
    "-- The schema the migrations make (migrations/NNN_*.sql, applied in order). Generated, never edited:\n"
    "-- .venv/bin/python -m tests.support.schema DATABASE_URL > docs/schema.sql\n"
)
# Lines of pg_dump's that vary between runs and minor releases, not with the schema.
_NOISE = ("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")
_CATALOG = {
    "hypertables": "SELECT hypertable_name, num_dimensions, compression_enabled"
    " FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public' ORDER BY 1",
    "dimensions": "SELECT hypertable_name, column_name, time_interval::text FROM timescaledb_information.dimensions"
    " WHERE hypertable_schema = 'public' ORDER BY 1, 2",
    "columnstore": "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index, orderby_asc"
    " FROM timescaledb_information.compression_settings WHERE hypertable_schema = 'public' ORDER BY 1, 2",
    "continuous aggregates": "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
    " WHERE view_schema = 'public' ORDER BY 1",
    "jobs": "SELECT proc_name, schedule_interval::text, coalesce(hypertable_name, '') FROM"
    " timescaledb_information.jobs WHERE proc_schema <> '_timescaledb_functions' OR hypertable_name IS NOT NULL"
    " ORDER BY 1, 3",
}


def dump_public(url: str) -> str:
    dumped = subprocess.run(
        ["pg_dump", "--schema-only", "--schema=public", "--no-owner", "--no-privileges", f"--dbname={url}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kept = [line for line in dumped.splitlines() if not line.startswith(_NOISE)]
    text = "\n".join(kept)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"


async def catalog(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        parts = []
        for title, query in _CATALOG.items():
            rows = await conn.fetch(query)
            parts.append(f"-- TimescaleDB {title}:\n" + "".join(f"--   {' | '.join(map(str, r))}\n" for r in rows))
        return "\n".join(parts)
    finally:
        await conn.close()


async def schema_text(url: str) -> str:
    return f"{HEADER}\n{dump_public(url)}\n{await catalog(url)}"


if __name__ == "__main__":
    sys.stdout.write(asyncio.run(schema_text(sys.argv[1])))
