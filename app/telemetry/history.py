"""A robot's history for the routes and the features above: pages of readings, time buckets, the CSV export, what
was stored after a stream position, and forgetting a robot inside a caller's transaction."""

from __future__ import annotations

from app.telemetry.store import (
    fetch_buckets,
    fetch_history_page,
    fetch_stored_since,
    forget_robot_in,
    read_spool,
    spool_csv,
)

__all__ = ["fetch_buckets", "fetch_history_page", "fetch_stored_since", "forget_robot_in", "read_spool", "spool_csv"]
