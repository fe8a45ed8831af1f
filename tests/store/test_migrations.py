"""Applying every migration to an empty database gives the expected schema, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from app.model.reading import COLUMNS
from app.platform.migrations import MIGRATIONS_DIR, apply_migrations, list_migrations
from app.telemetry import queries as telemetry_sql
from app.telemetry import store as telemetry
from tests.support.database import ROOT, database_url_for, recreate_database, refresh_minutes
from tests.support.schema import schema_text

SCRATCH = "fleet_migrations_test"
SCHEMA_FILE = ROOT / "docs" / "schema.sql"
INFORMATION_SCHEMA_TYPES = {
    "timestamptz": "timestamp with time zone",
    "float8": "double precision",
    "int8": "bigint",
    "text": "text",
    "jsonb": "jsonb",
    "robot_status": "USER-DEFINED",
}
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
        # Three indexes: the unique (robot_key, time) that deduplicates and serves the per-robot queries, and
        # BRINs on stored_at for stream resumes and on stored_xid for following commits (cheap on COPY).
        assert sorted(indexes) == ["telemetry_robot_time", "telemetry_stored_at", "telemetry_stored_xid"]
        assert "USING brin (stored_at)" in indexes["telemetry_stored_at"]
        assert "USING brin (stored_xid)" in indexes["telemetry_stored_xid"]
        assert "UNIQUE" in indexes["telemetry_robot_time"]
        assert '(robot_key, "time" DESC)' in indexes["telemetry_robot_time"]
        # The migrations give telemetry and robot_latest exactly the columns the reading declares, in its order.
        for table in ("telemetry", "robot_latest"):
            columns = [
                (r["column_name"], r["data_type"])
                for r in await conn.fetch(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1"
                    " ORDER BY ordinal_position",
                    table,
                )
            ]
            expected = [("robot_key", "integer")] + [(c.name, INFORMATION_SCHEMA_TYPES[c.sql_type]) for c in COLUMNS]
            # and when the server had it (robot_latest), or when and by which transaction it was stored (telemetry)
            if table == "robot_latest":
                expected.append(("received_at", "timestamp with time zone"))
            else:
                expected += [("stored_at", "timestamp with time zone"), ("stored_xid", "bigint")]
            assert columns == expected, table
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


async def test_battery_values_stored_as_real_come_back_as_sent(scratch_url: str, tmp_path: Path) -> None:
    # A database at the schema before the wider reading, holding what the old API stored.
    for version, _, path in list_migrations():
        if version <= 3:
            (tmp_path / path.name).write_text(path.read_text())
    await apply_migrations(scratch_url, tmp_path)
    conn = await asyncpg.connect(scratch_url)
    try:
        await conn.execute(
            "INSERT INTO robots (robot_id, last_seen, latitude, longitude, battery_level, battery_voltage)"
            " VALUES ('old', '2026-11-01T00:00:00Z', 1, 2, 70.09, 24.61)"
        )
        await conn.execute(
            "INSERT INTO telemetry (robot_key, time, latitude, longitude, battery_level, battery_voltage)"
            " SELECT robot_key, '2026-11-01T00:00:00Z', 1, 2, 70.09, 24.61 FROM robots"
        )
        assert await conn.fetchval("SELECT battery_level::float8 FROM telemetry") != 70.09  # the real's artefact
        await apply_migrations(scratch_url)
        for table in ("telemetry", "robot_latest"):
            stored = await conn.fetchrow(f"SELECT battery_level, battery_voltage FROM {table}")
            assert stored is not None and tuple(stored) == (70.09, 24.61), table
    finally:
        await conn.close()


async def test_a_database_made_before_commit_positions_is_upgraded(scratch_url: str, tmp_path: Path) -> None:
    """What the code before migration 012 left: a replay's rows with no stored_at, rollups that missed them, and a
    latest state a crash left behind. The upgrade rebuilds the rollups at the next pass and repairs the state."""
    for version, _, path in list_migrations():
        if version <= 11:
            (tmp_path / path.name).write_text(path.read_text())
    await apply_migrations(scratch_url, tmp_path)
    conn = await asyncpg.connect(scratch_url)
    try:
        await conn.execute("INSERT INTO robots (robot_id) VALUES ('old')")
        insert = (
            "INSERT INTO telemetry (robot_key, time, latitude, longitude, battery_level, stored_at)"
            " SELECT 1, '2026-11-01T00:00:00Z'::timestamptz + s * interval '1 s', 1, 2, 50, $1"
            " FROM generate_series(0, 9) s"
        )
        await conn.execute(insert, None)  # stored beside a replay: no stored_at
        await conn.execute("UPDATE rollup_state SET rolled_up_to = now(), status_gap_s = 300")
        await conn.execute(
            "INSERT INTO robot_latest SELECT robot_key, time, latitude, longitude, battery_level, battery_voltage,"
            " status, seq, heading, speed, altitude, accuracy, pose_frame, pose_x, pose_y, pose_yaw, fields, time"
            " FROM telemetry ORDER BY time LIMIT 1"
        )
        await apply_migrations(scratch_url)
        assert await conn.fetchval("SELECT rolled_up_xid FROM rollup_state") is None  # rolled up again next pass
        latest = await conn.fetchval("SELECT time FROM robot_latest")
        assert latest == await conn.fetchval("SELECT max(time) FROM telemetry")
        position = await conn.fetchval("SELECT derived_xid FROM derived_state")
        await conn.execute(insert.replace("0, 9", "10, 10"), None)
        added = await conn.fetchval("SELECT stored_xid FROM telemetry WHERE time = $1", latest + timedelta(seconds=1))
        assert added > position
    finally:
        await conn.close()


async def test_a_database_made_before_the_minute_aggregate_is_upgraded(scratch_url: str, tmp_path: Path) -> None:
    """What the code before migration 017 left: readings (a day of them in the columnstore) and the hand-kept
    minute rollup. telemetry_1m becomes a continuous aggregate that the database refreshes; the buckets are the
    readings' before its first refresh and after."""
    for version, _, path in list_migrations():
        if version <= 16:
            (tmp_path / path.name).write_text(path.read_text())
    await apply_migrations(scratch_url, tmp_path)
    conn = await asyncpg.connect(scratch_url)
    try:
        await conn.execute("INSERT INTO robots (robot_id) VALUES ('old')")
        await conn.execute(
            "INSERT INTO telemetry (robot_key, time, latitude, longitude, battery_level)"
            " SELECT 1, '2026-11-01T00:00:00Z'::timestamptz + s * interval '7 s', 1, 2, s % 100"
            " FROM generate_series(0, 2 * 86400 / 7) s"
        )
        await conn.execute("SELECT compress_chunk(c) FROM show_chunks('telemetry', older_than => '2026-11-02'::date) c")
        await conn.execute(
            "INSERT INTO telemetry_1m (robot_key, minute, readings, battery_sum, battery_min, battery_max,"
            " voltage_count, idle, moving, working, charging, error)"
            " VALUES (1, '2026-11-01T00:00:00Z', 9, 0, 0, 0, 0, 0, 0, 0, 0, 0)"  # as a pass had it
        )
        await apply_migrations(scratch_url)
        kind = "SELECT count(*) FROM timescaledb_information.continuous_aggregates WHERE view_name = 'telemetry_1m'"
        assert await conn.fetchval(kind) == 1
        job = "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'refresh_minutes' AND scheduled"
        assert await conn.fetchval(job) == 1
        interval = await conn.fetchval(
            "SELECT d.time_interval FROM timescaledb_information.continuous_aggregates a"
            " JOIN timescaledb_information.dimensions d ON d.hypertable_name = a.materialization_hypertable_name"
            " WHERE a.view_name = 'telemetry_1m'"
        )
        assert interval == timedelta(days=1)
        args = (1, timedelta(hours=1), "UTC", datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
        raw = await conn.fetch(telemetry_sql.SELECT_BUCKETS, *args)
        assert sum(r["readings"] for r in raw) == 2 * 86400 // 7 + 1
        assert await telemetry.fetch_rolled_up_buckets(conn, *args) == raw  # never refreshed: from the readings
        await refresh_minutes(conn)  # the scratch database's job may be refreshing already
        assert await conn.fetchval("SELECT refreshed_to FROM rollup_state") is not None
        rolled = await telemetry.fetch_rolled_up_buckets(conn, *args)
        assert [tuple(r) for r in rolled] == [tuple(r) for r in raw]
    finally:
        await conn.close()


async def test_the_migrations_make_the_schema_in_schema_sql(scratch_url: str) -> None:
    """docs/schema.sql is the whole schema in one readable file; regenerate it when a migration changes it:
    .venv/bin/python -m tests.support.schema DATABASE_URL > docs/schema.sql (on a freshly migrated database)."""
    await apply_migrations(scratch_url)
    made = await schema_text(scratch_url)
    assert made == SCHEMA_FILE.read_text(), "the migrations and docs/schema.sql differ: regenerate the file"
