"""Service settings: one frozen struct, read from ``FLEET_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated

import msgspec

ENV_PREFIX = "FLEET_"

Positive = Annotated[int, msgspec.Meta(gt=0)]


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    database_url: str = "postgresql://postgres@127.0.0.1:55432/fleet"
    pool_min_size: Annotated[int, msgspec.Meta(ge=0)] = 1
    pool_max_size: Positive = 8
    migrate_on_start: bool = True
    # Group commit: a flush starts when this many rows wait, or when the oldest waiting row is this old.
    flush_max_rows: Positive = 5000
    flush_interval_ms: Positive = 5
    # Flushes in flight at once per process; each holds one connection.
    flush_concurrency: Positive = 2
    # A flush that has not committed by then fails its requests with 503 instead of hanging them.
    flush_timeout_ms: Positive = 10_000
    retry_after_s: Positive = 1
    max_readings_per_request: Positive = 10_000
    max_body_bytes: Positive = 8 * 1024 * 1024
    # Accepted timestamp window relative to the server clock.
    max_future_s: Positive = 600
    max_past_s: Positive = 30 * 86_400
    history_default_limit: Positive = 100
    history_max_limit: Positive = 1000
    db_timeout_ms: Positive = 2000  # health check
    # Longest a single statement may run; the fleet-wide analytic queries are the ones that get near it.
    query_timeout_ms: Positive = 30_000
    # Each robot's latest state is written at most this often (and before every read of it in this process).
    latest_interval_ms: Positive = 200
    # A robot with no reading for this long counts as offline (GET /robots and the fleet questions).
    stale_after_s: Positive = 300
    max_buckets: Positive = 10_000
    # Daily activity: a reading's status lasts until the next one, but a silence longer than this counts as none.
    max_status_gap_s: Positive = 300
    # Live stream: readings a subscriber may fall behind by before it is cut off (ingest never waits for it).
    stream_queue_size: Positive = 10_000


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``FLEET_<FIELD>`` variables; unset ones keep their defaults."""
    env = os.environ if environ is None else environ
    values = {
        name: env[ENV_PREFIX + name.upper()] for name in Settings.__struct_fields__ if ENV_PREFIX + name.upper() in env
    }
    # strict=False parses the strings ("5000", "true") into the declared types, constraints still apply.
    return msgspec.convert(values, Settings, strict=False)
