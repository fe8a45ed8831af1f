"""``python -m app.cli.migrate``: apply pending migrations; ``--create-database`` first creates the database."""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import urlsplit

from app.platform.migrations import apply_migrations, create_database_if_missing
from app.platform.settings import load_settings


async def run(create_database: bool) -> None:
    url = load_settings().database.database_url
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
