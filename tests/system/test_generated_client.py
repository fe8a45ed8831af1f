"""The OpenAPI document is the contract: a client generated from it alone (openapi-python-client) ingests and
reads through the real API."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from app.platform.settings import Settings, replace_settings
from app.web.app import create_app
from tests.support.auth import issue_key
from tests.support.servers import live_api

GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def generate_client(settings: Settings, into: Path) -> Any:
    document = into / "openapi.json"
    document.write_bytes(msgspec.json.encode(create_app(settings).openapi_schema.to_schema()))  # as /docs serves it
    subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
            "--output-path",
            str(into / "fleet_client"),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(into))
    try:
        return importlib.import_module("fleet_client")
    finally:
        sys.path.remove(str(into))


async def test_a_generated_client_ingests_and_reads(
    settings: Settings, database_url: str, conn: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secured = replace_settings(settings, auth="on")
    client_package = generate_client(secured, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    ingest = importlib.import_module("fleet_client.api.telemetry.ingest_readings")
    list_robots = importlib.import_module("fleet_client.api.fleet_state.list_robots")
    models = importlib.import_module("fleet_client.models")
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
        key = await issue_key(pool, "client", "ingest", "read")
        await pool.execute("INSERT INTO robots (robot_id) VALUES ('GEN-1')")  # provisioned, as an admin would
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    async with live_api(secured) as base:
        # No kept-alive connections: each request's socket is closed with it (a pooled one that uvicorn closes at
        # shutdown would be left for the garbage collector, and warn in whatever test runs next).
        no_pool = {"limits": httpx.Limits(max_keepalive_connections=0)}
        client = client_package.AuthenticatedClient(base_url=base, token=key, httpx_args=no_pool)

        def call() -> tuple[Any, Any]:
            reading = models.Reading(
                robot_id="GEN-1",
                battery_level=42.5,
                location=models.Location(latitude=1.5, longitude=2.5),
                timestamp=at,
            )
            stored = ingest.sync(client=client, body=reading)
            return stored, list_robots.sync(client=client)

        stored, robots = await asyncio.to_thread(call)
    assert (stored.accepted, stored.duplicates) == (1, 0)
    [robot] = robots.robots
    assert robots.next_cursor is None
    assert (robot.robot_id, robot.battery_level, robot.location.latitude) == ("GEN-1", 42.5, 1.5)
