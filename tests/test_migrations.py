"""Applying every migration to an empty database gives the expected schema, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.db import MIGRATIONS_DIR, apply_migrations, list_migrations
from tests.conftest import database_url_for, recreate_database

SCRATCH = "fleet_migrations_test"
DROP_SCRATCH = f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'
CREATE_SCRATCH = f'CREATE DATABASE "{SCRATCH}"'


@pytest.fixture
async def scratch_url(server_url: str) -> AsyncIterator[str]:
    await recreate_database(server_url, DROP_SCRATCH, CREATE_SCRATCH)
    yield database_url_for(server_url, SCRATCH)


async def test_all_migrations_give_the_expected_schema(scratch_url: str) -> None:
    versions = [version for version, _, _ in list_migrations()]
    assert await apply_migrations(scratch_url) == versions
    assert await apply_migrations(scratch_url) == []  # a second run is a no-op

    conn = await asyncpg.connect(scratch_url)
    try:
        recorded = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
        assert recorded == versions
        hypertable = await conn.fetchrow(
            "SELECT d.column_name, d.time_interval FROM timescaledb_information.dimensions d"
            " WHERE d.hypertable_name = 'telemetry'"
        )
        assert hypertable is not None
        assert hypertable["column_name"] == "time"
        assert hypertable["time_interval"].days == 1
        indexes = {
            r["indexname"]: r["indexdef"]
            for r in await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'telemetry'")
        }
        # Exactly one index: the unique (robot_key, time) that deduplicates and serves the per-robot queries.
        assert list(indexes) == ["telemetry_robot_time"]
        assert "UNIQUE" in indexes["telemetry_robot_time"]
        assert '(robot_key, "time" DESC)' in indexes["telemetry_robot_time"]
        columns = {
            r["column_name"]: r["data_type"]
            for r in await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'telemetry'"
            )
        }
        assert columns == {
            "robot_key": "integer",
            "time": "timestamp with time zone",
            "latitude": "double precision",
            "longitude": "double precision",
            "battery_level": "real",
            "battery_voltage": "real",
            "status": "USER-DEFINED",
            "seq": "bigint",
        }
        collation = await conn.fetchval(
            "SELECT collation_name FROM information_schema.columns"
            " WHERE table_name = 'robots' AND column_name = 'robot_id'"
        )
        assert collation == "C"
    finally:
        await conn.close()


def test_migration_files_are_numbered_without_gaps() -> None:
    versions = [version for version, _, _ in list_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_misnamed_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "001_ok.sql").write_text("SELECT 1")
    (tmp_path / "two.sql").write_text("SELECT 1")
    with pytest.raises(ValueError, match=r"001_name\.sql"):
        list_migrations(tmp_path)
    assert MIGRATIONS_DIR.is_dir()
