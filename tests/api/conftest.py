"""The api tier: HTTP against apps shared by the whole session (tests/support/apps.py), with every background
round the tests depend on (alerts, rollups, webhook deliveries) run by the test itself, never waited for."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from app.platform.settings import Settings, replace_settings
from tests.support.apps import SharedApps
from tests.support.servers import Served

HOUR_MS = 3_600_000
# The background rounds run once as an app starts and then not within a session: a test runs them when it needs
# them (served.services.alerts.run_round(), a rollup pass), so what it asserts never depends on a tick's timing.
EXPLICIT_ROUNDS = {
    "alert_interval_ms": HOUR_MS,
    "alert_tick_ms": 1,  # every round a test runs also evaluates the rules that hold by the passing of time
    "rollup_interval_ms": HOUR_MS,
    "webhook_poll_ms": HOUR_MS,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace_settings(settings, **EXPLICIT_ROUNDS)


@pytest.fixture
def alert_settings(settings: Settings) -> Settings:
    return replace_settings(settings, webhook_allow_private=True)


@pytest.fixture
async def served(shared_apps: SharedApps, settings: Settings, conn: asyncpg.Connection) -> Served:
    """The shared app of this test's settings, on the emptied database."""
    return await shared_apps.get(settings)


@pytest.fixture
def client(served: Served) -> httpx.AsyncClient:
    return served.http
