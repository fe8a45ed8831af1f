"""The plain-SQL migration runner: ``migrations/NNN_name.sql``, each applied once in its own transaction."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

# Session-level lock so that several workers starting at once apply each migration exactly once.
LOCK_MIGRATIONS = "SELECT pg_advisory_lock($1)"
UNLOCK_MIGRATIONS = "SELECT pg_advisory_unlock($1)"
DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = $1"
CREATE_DATABASE_PREFIX = "CREATE DATABASE "  # + a quoted identifier: DDL takes no parameters
SELECT_APPLIED_MIGRATIONS = "SELECT version FROM schema_migrations"
INSERT_MIGRATION = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
# Any constant works; it only has to be the same for every process that migrates this database.
MIGRATION_LOCK_KEY = 7_201_911
_MIGRATION_NAME = re.compile(r"^(\d+)_([\w-]+)\.sql$")


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
        await conn.execute(LOCK_MIGRATIONS, MIGRATION_LOCK_KEY)
        try:
            await conn.execute(CREATE_MIGRATIONS_TABLE)
            applied = {row["version"] for row in await conn.fetch(SELECT_APPLIED_MIGRATIONS)}
            newly_applied = []
            for version, name, path in list_migrations(directory):
                if version in applied:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute(INSERT_MIGRATION, version, name)
                newly_applied.append(version)
            return newly_applied
        finally:
            await conn.execute(UNLOCK_MIGRATIONS, MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


def quote_identifier(name: str) -> str:
    # A database name cannot be a $n parameter. It comes from the operator's settings, never from a request.
    return '"' + name.replace('"', '""') + '"'


async def create_database_if_missing(database_url: str) -> bool:
    url = urlsplit(database_url)
    name = url.path.lstrip("/")
    maintenance = urlunsplit(url._replace(path="/postgres"))
    conn = await asyncpg.connect(maintenance)
    try:
        if await conn.fetchval(DATABASE_EXISTS, name):
            return False
        await conn.execute(CREATE_DATABASE_PREFIX + quote_identifier(name))
        return True
    finally:
        await conn.close()
