"""The tiers (unit, store, api, system: each test's folder is its tier, and its marker) and the real TimescaleDB
every tier but unit uses: the project-local cluster, one test database, every test starting from it emptied."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.platform.migrations import apply_migrations
from app.platform.settings import Settings, replace_settings, settings_from
from tests.support.apps import SHARED_APPS, SharedApps
from tests.support.database import (
    DB_SCRIPT,
    PAUSE_POLICIES,
    TRUNCATE_ALL,
    database_url_for,
    execute_once,
    recreate_database,
    run_db_script,
)
from tests.support.servers import serve_in_process

TIERS = ("unit", "store", "api", "system")
DATABASE_FIXTURES = frozenset({"database_url", "conn", "pool", "client", "served", "shared_apps", "emptied"})
TEST_DATABASE = "fleet_test"
# Identifiers cannot be $n parameters; these are fixed names, never input.
DROP_TEST_DATABASE = f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)'
CREATE_TEST_DATABASE = f'CREATE DATABASE "{TEST_DATABASE}"'


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``pytest -m api`` and the like: a test's tier is the folder under tests/ it lives in."""
    root = Path(__file__).parent
    for item in items:
        tier = item.path.relative_to(root).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of the tiers' folders {TIERS}")
        item.add_marker(tier)
        if tier == "unit" and DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(f"{item.nodeid}: a unit test uses no database; it belongs in tests/store or api")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """FLEET_TEST_SERVER_URL names a running server to use; otherwise the project-local cluster is started, and
    stopped again at the end if this run started it."""
    if url := os.environ.get("FLEET_TEST_SERVER_URL"):
        yield url
        return
    was_running = run_db_script("status").returncode == 0
    subprocess.run(["bash", str(DB_SCRIPT), "up"], check=True)
    yield run_db_script("url").stdout.strip()
    if not was_running:
        run_db_script("down")


@pytest.fixture(scope="session")
def database_url(server_url: str) -> str:
    asyncio.run(recreate_database(server_url, DROP_TEST_DATABASE, CREATE_TEST_DATABASE))
    url = database_url_for(server_url, TEST_DATABASE)
    asyncio.run(apply_migrations(url))
    asyncio.run(execute_once(url, PAUSE_POLICIES))
    return url


@pytest.fixture
async def emptied(database_url: str, request: pytest.FixtureRequest) -> None:
    """The test database emptied; the apps shared by the api tier (if any) first settled, then told."""
    shared = request.config.stash.get(SHARED_APPS, None)
    if shared is not None:
        await shared.settle()
    await execute_once(database_url, TRUNCATE_ALL)
    if shared is not None:
        shared.forget_database()


@pytest.fixture
async def conn(database_url: str, emptied: None) -> AsyncIterator[asyncpg.Connection]:
    """A connection to an emptied test database: every test starts from no robots and no readings."""
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Authentication off: these tests are about behaviour; tests/api/test_auth.py turns it on."""
    return settings_from(
        {"database_url": database_url, "migrate_on_start": False, "flush_interval_ms": 2, "auth": "off"}
    )


@pytest.fixture
def auth_settings(settings: Settings) -> Settings:
    """Authentication on, credentials re-polled every 100 ms and a rotation's grace of 1 s, so tests see both."""
    return replace_settings(settings, auth="on", auth_poll_ms=100, rotation_grace_s=1)


@pytest.fixture
def alert_settings(settings: Settings) -> Settings:
    """Alerts evaluated and delivered quickly, so their tests wait a fraction of a second, to receivers on this
    machine."""
    return replace_settings(
        settings, alert_tick_ms=100, alert_interval_ms=20, webhook_poll_ms=100, webhook_allow_private=True
    )


@pytest.fixture
async def pool(database_url: str, conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the emptied test database, for tests that issue credentials or write as the service."""
    async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as created:
        yield created


@pytest.fixture
async def client(settings: Settings, conn: asyncpg.Connection) -> AsyncIterator[httpx.AsyncClient]:
    """The app built for this test (the api tier shares one per settings instead: tests/api/conftest.py)."""
    async with serve_in_process(settings) as http:
        yield http


@pytest.fixture(scope="session")
async def shared_apps(request: pytest.FixtureRequest) -> AsyncIterator[SharedApps]:
    async with SharedApps() as apps:
        request.config.stash[SHARED_APPS] = apps
        try:
            yield apps
        finally:
            del request.config.stash[SHARED_APPS]
