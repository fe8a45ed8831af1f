"""The real TimescaleDB the integration tests use: the project-local cluster, and scratch databases on it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent.parent
DB_SCRIPT = ROOT / "scripts" / "db.sh"


def run_db_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(DB_SCRIPT), *args], capture_output=True, text=True)


def database_url_for(server_url: str, database: str) -> str:
    return server_url.rsplit("/", 1)[0] + "/" + database


async def recreate_database(server_url: str, drop_sql: str, create_sql: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(drop_sql)
        await conn.execute(create_sql)
    finally:
        await conn.close()


# Every test starts from no robots, readings, credentials or alerts (identifiers: fixed names, never input).
TRUNCATE_ALL = (
    "TRUNCATE telemetry, telemetry_1m, telemetry_15m, robots, robot_latest, credentials, alert_rules, alerts, "
    "webhooks, webhook_deliveries, alert_anchors RESTART IDENTITY; "
    "UPDATE rollup_state SET rolled_up_xid = NULL, status_gap_s = NULL"
)
