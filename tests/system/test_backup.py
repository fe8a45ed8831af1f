"""docs/deployment.md's backup, as written: `scripts/backup.sh dump` of a database holding readings in the columnstore
and in the row store, rollups and credentials, `restore` into an empty database, and the service on the restored
copy answers exactly as on the original, keeps its replay guard, and takes new readings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.platform.settings import Settings, replace_settings
from app.rollups import store as rollups
from tests.support.builders import reading
from tests.support.database import ROOT, database_url_for, recreate_database, refresh_minutes
from tests.support.servers import serve_in_process

pytestmark = pytest.mark.system

RESTORED = "fleet_restore_test"  # a fixed name, never input
BACKUP_SCRIPT = ROOT / "scripts" / "backup.sh"


async def run_backup(*args: str) -> None:
    process = await asyncio.create_subprocess_exec("bash", str(BACKUP_SCRIPT), *args)
    assert await process.wait() == 0, args


async def answers(api: httpx.AsyncClient, robots: list[str], since: datetime) -> dict[str, Any]:
    """What the service says: the fleet, every robot's history and its hourly buckets, and daily activity."""
    window = {"since": since.isoformat(), "until": (since + timedelta(days=4)).isoformat()}
    said: dict[str, Any] = {"robots": (await api.get("/robots")).json()}
    for robot_id in robots:
        said[f"{robot_id} history"] = (await api.get(f"/telemetry/{robot_id}", params={**window, "limit": 1000})).json()
        said[f"{robot_id} hours"] = (await api.get(f"/telemetry/{robot_id}", params={**window, "bucket": "1h"})).json()
    day = (since + timedelta(days=1)).date().isoformat()
    said["activity"] = (await api.get("/fleet/daily-activity", params={"day": day})).json()
    for robot in said["robots"]["robots"]:
        robot.pop("online", None)  # judged against now, which moved on between the two
    return said


async def test_a_backup_restores_to_a_service_that_answers_alike(
    settings: Settings, conn: asyncpg.Connection, pool: asyncpg.Pool, server_url: str, tmp_path: Path
) -> None:
    since = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    robots = ["bk-1", "bk-2", "bk-3"]
    body = [
        reading(robot_id, since + timedelta(minutes=7 * i), battery_level=90 - i * 0.05, seq=i, status="working")
        for robot_id in robots
        for i in range(3 * 24 * 60 // 7)
    ]
    async with serve_in_process(settings) as api:
        for start in range(0, len(body), 1000):
            assert (await api.post("/telemetry", json=body[start : start + 1000])).status_code == 200
        # The oldest days into the columnstore, as the database's policy would after a day; rollups refreshed.
        compressed = await conn.fetchval(
            "SELECT count(compress_chunk(c)) FROM show_chunks('telemetry', older_than => now() - interval '1 day') c"
        )
        assert compressed >= 1
        await refresh_minutes(conn)
        await rollups.roll_up_stored(pool, settings.query.max_status_gap_s)
        before = await answers(api, robots, since)
    assert len(before["bk-1 history"]["readings"]) > 500
    assert len(before["activity"]["robots"]) == len(robots), before["activity"]

    dump = tmp_path / "fleet.dump"
    await run_backup("dump", settings.database.database_url, str(dump))
    await recreate_database(server_url, f"DROP DATABASE IF EXISTS {RESTORED}", f"CREATE DATABASE {RESTORED}")
    restored_url = database_url_for(server_url, RESTORED)
    try:
        await run_backup("restore", str(dump), restored_url)
        async with serve_in_process(replace_settings(settings, database_url=restored_url)) as api:
            assert await answers(api, robots, since) == before
            # The replay guard came along: a reading sent again is a duplicate; a new one is stored.
            replay = (await api.post("/telemetry", json=body[:10])).json()
            assert (replay["accepted"], replay["duplicates"]) == (0, 10)
            new = reading("bk-1", datetime.now(UTC) - timedelta(seconds=5), seq=10_000)
            assert (await api.post("/telemetry", json=new)).json()["accepted"] == 1
    finally:
        await recreate_database(server_url, f"DROP DATABASE IF EXISTS {RESTORED} WITH (FORCE)", "SELECT 1")
