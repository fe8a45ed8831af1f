"""Database access: the connection pool and the plain-SQL migration runner."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from app import queries
from app.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same for every process that migrates this database.
MIGRATION_LOCK_KEY = 7_201_911
_MIGRATION_NAME = re.compile(r"^(\d+)_([\w-]+)\.sql$")

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
# What a pool hands out (a proxy) and what asyncpg.connect returns: the ingest code takes either.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


async def create_pool(settings: Settings) -> Pool:
    # statement_cache_size stays on: every statement here is a constant, so prepared plans are reused.
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=settings.query_timeout_ms / 1000,
    )


def list_migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, str, Path]]:
    """Return ``(version, name, path)`` for each ``NNN_name.sql`` file, in version order."""
    found = []
    for path in directory.glob("*.sql"):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file name must look like 001_name.sql: {path.name}")
        found.append((int(match[1]), match[2], path))
    versions = [version for version, _, _ in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {directory}")
    return sorted(found)


async def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply each pending migration in its own transaction; return the versions applied now."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(queries.LOCK_MIGRATIONS, MIGRATION_LOCK_KEY)
        try:
            await conn.execute(queries.CREATE_MIGRATIONS_TABLE)
            applied = {row["version"] for row in await conn.fetch(queries.SELECT_APPLIED_MIGRATIONS)}
            newly_applied = []
            for version, name, path in list_migrations(directory):
                if version in applied:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute(queries.INSERT_MIGRATION, version, name)
                newly_applied.append(version)
            return newly_applied
        finally:
            await conn.execute(queries.UNLOCK_MIGRATIONS, MIGRATION_LOCK_KEY)
    finally:
        await conn.close()
