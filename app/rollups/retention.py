"""Data lifecycle in the database's own jobs: the retention policies kept in step with FLEET_RETENTION, the
columnstore policy, and what the jobs did."""

from __future__ import annotations

from app.rollups.store import (
    RETAINED_TABLES,
    fetch_columnstore_policy,
    fetch_jobs,
    fetch_timescaledb_license,
    set_retention_policies,
)

__all__ = [
    "RETAINED_TABLES",
    "fetch_columnstore_policy",
    "fetch_jobs",
    "fetch_timescaledb_license",
    "set_retention_policies",
]
