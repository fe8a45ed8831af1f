"""The real TimescaleDB the integration tests use: the project-local cluster, and scratch databases on it."""

from __future__ import annotations

import asyncio
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
# Ids are not restarted, as in production they never are: an app the api tier shares keeps state by credential id
# (rate limits, requests in flight) and by robot key (latest state), which a reused id would inherit. The rules'
# epoch moves, so that a shared app's alert engine drops the rules it compiled.
# The test database's columnstore policy and minute refreshes are paused: a job converting or refreshing on its
# own schedule would race the tests' TRUNCATEs and drops (deadlocks, seen). Tests convert and refresh themselves.
PAUSE_POLICIES = (
    "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
    " WHERE proc_name IN ('policy_compression', 'refresh_minutes')"
)
TRUNCATE_ALL = (
    "TRUNCATE telemetry, telemetry_1m, telemetry_15m, robots, robot_latest, credentials, alert_rules, alerts, "
    "webhooks, webhook_deliveries, alert_anchors; "
    "UPDATE rollup_state SET rolled_up_xid = NULL, status_gap_s = NULL, refreshed_xid = NULL, refreshed_to = NULL; "
    "UPDATE alert_rules_epoch SET epoch = epoch + 1"
)
# The refresh job made anew (no run history): on a short schedule for tests of the whole service under load,
# paused on the migration's schedule afterwards. Anew, because TimescaleDB holds a job that a database restart or
# kill interrupted for at least 5 minutes, whatever its next start is set to (a later test's job never ran: seen).
_DROP_REFRESH_JOB = "SELECT delete_job(job_id) FROM timescaledb_information.jobs WHERE proc_name = 'refresh_minutes'"
REFRESH_EVERY_SECOND = (
    f"{_DROP_REFRESH_JOB}; "
    "SELECT add_job('refresh_minutes', interval '1 second', initial_start => now(), fixed_schedule => false)"
)
REFRESH_EVERY_30_S = (
    f"{_DROP_REFRESH_JOB}; "
    "SELECT add_job('refresh_minutes', interval '30 seconds', scheduled => false, fixed_schedule => false)"
)
# What the database's refresh job runs (migrations/017), now rather than on its schedule.
REFRESH_MINUTES = "CALL refresh_minutes(NULL, NULL)"


async def refresh_minutes(pool: asyncpg.Pool | asyncpg.Connection, attempts: int = 100) -> None:
    """A refresh now; where the database's own job is running one (a database whose job is not paused), after it."""
    for attempt in range(attempts):
        try:
            await pool.execute(REFRESH_MINUTES)
            return
        except asyncpg.LockNotAvailableError:  # "due to a concurrent refresh"
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.1)


async def execute_once(url: str, statement: str) -> None:
    """One statement on its own connection."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
