"""``python -m app.migrate``: apply pending migrations; ``--create-database`` first creates the database."""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app import queries
from app.db import apply_migrations
from app.settings import load_settings


def quote_identifier(name: str) -> str:
    # A database name cannot be a $n parameter. It comes from the operator's settings, never from a request.
    return '"' + name.replace('"', '""') + '"'


async def create_database_if_missing(database_url: str) -> bool:
    url = urlsplit(database_url)
    name = url.path.lstrip("/")
    maintenance = urlunsplit(url._replace(path="/postgres"))
    conn = await asyncpg.connect(maintenance)
    try:
        if await conn.fetchval(queries.DATABASE_EXISTS, name):
            return False
        await conn.execute(queries.CREATE_DATABASE_PREFIX + quote_identifier(name))
        return True
    finally:
        await conn.close()


async def run(create_database: bool) -> None:
    url = load_settings().database_url
    if create_database and await create_database_if_missing(url):
        print(f"migrate: created database {urlsplit(url).path.lstrip('/')}")
    applied = await apply_migrations(url)
    print(f"migrate: applied {applied}" if applied else "migrate: schema is up to date")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--create-database", action="store_true", help="create the database if it is missing")
    asyncio.run(run(parser.parse_args().create_database))


if __name__ == "__main__":
    main()
