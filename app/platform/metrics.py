"""Prometheus metrics, through the official client. With several worker processes the client's multiprocess mode
is used (``PROMETHEUS_MULTIPROC_DIR``, set by ``python -m app``): each process writes its own files and a scrape
of any worker sums them, so /metrics is the whole server's, whichever worker answers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.platform.pool import Pool

_NS = "fleet"

READINGS_ACCEPTED = Counter("readings_accepted", "Readings stored (acknowledged after commit).", namespace=_NS)
READINGS_DUPLICATE = Counter("readings_duplicate", "Readings re-sent and recognised as stored.", namespace=_NS)
READINGS_REJECTED = Counter("readings_rejected", "Ingest requests refused, by problem type.", ["reason"], namespace=_NS)
FLUSH_ROWS = Histogram(
    "flush_rows", "Rows per flush (one COPY transaction).", namespace=_NS,
    buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000),
)  # fmt: skip
FLUSH_SECONDS = Histogram(
    "flush_seconds", "Time from a flush's start to its commit.", namespace=_NS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)  # fmt: skip
FLUSH_FAILURES = Counter("flush_failures", "Flushes that did not commit (their requests got 503).", namespace=_NS)
QUEUED_ROWS = Gauge("ingest_queued_rows", "Rows waiting for a flush.", namespace=_NS, multiprocess_mode="livesum")
CREDENTIAL_LOOKUPS = Counter(
    "credential_lookups", "Tokens looked up in the database one by one: not among the credentials each process loads.",
    namespace=_NS,
)  # fmt: skip
MQTT_ACKS = Counter("mqtt_acks", "MQTT messages answered on the robot's ack topic after their commit.", namespace=_NS)
MQTT_DEAD_LETTERS = Counter(
    "mqtt_dead_letters", "MQTT messages refused for good (a problem on the robot's errors topic), by problem type.",
    ["reason"], namespace=_NS,
)  # fmt: skip
MQTT_DEFERRED = Counter(
    "mqtt_deferred", "MQTT messages answered 'retry later' (rate limit, storage unavailable), by problem type.",
    ["reason"], namespace=_NS,
)  # fmt: skip
HTTP_REQUESTS = Counter(
    "http_requests", "HTTP requests, by route template, method and status.", ["route", "method", "status"],
    namespace=_NS,
)  # fmt: skip
HTTP_SECONDS = Histogram(
    "http_request_duration_seconds", "HTTP request latency, by route template.", ["route", "method"],
    namespace=_NS, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)  # fmt: skip
POOL_CONNECTIONS = Gauge(
    "pool_connections", "Database connections, by pool and state (in_use, idle).", ["pool", "state"],
    namespace=_NS, multiprocess_mode="livesum",
)  # fmt: skip
POOL_WAITING = Gauge(
    "pool_waiting", "Callers waiting for a connection, by pool.", ["pool"], namespace=_NS,
    multiprocess_mode="livesum",
)  # fmt: skip
STREAM_SUBSCRIBERS = Gauge("stream_subscribers", "Live-stream subscribers.", namespace=_NS, multiprocess_mode="livesum")
DATABASE_UP = Gauge(
    "database_up", "1 when the database answered the last check of this process.", namespace=_NS,
    multiprocess_mode="min",
)  # fmt: skip

DATABASE_JOB_FAILURES = Gauge(
    "database_job_failures", "Failed runs of each job the database's scheduler runs for the service.", ["job"],
    namespace=_NS, multiprocess_mode="max",
)  # fmt: skip
DATABASE_JOB_LAST_SUCCESS = Gauge(
    "database_job_last_success_timestamp_seconds", "When each database job last finished successfully (Unix s).",
    ["job"], namespace=_NS, multiprocess_mode="max",
)  # fmt: skip

ALERT_TRANSITIONS = Counter("alert_transitions", "Alerts opened, acknowledged and resolved.", ["event"], namespace=_NS)
ALERT_ROUND_SECONDS = Histogram(
    "alert_round_seconds", "Time an evaluation round of committed readings took.", namespace=_NS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)  # fmt: skip
ALERT_LAG_SECONDS = Gauge(
    "alert_evaluation_lag_seconds", "From the oldest commit of the last round to that round's end.",
    namespace=_NS, multiprocess_mode="max",
)  # fmt: skip
WEBHOOK_ATTEMPTS = Counter("webhook_attempts", "Webhook delivery attempts, by outcome.", ["outcome"], namespace=_NS)


def render_metrics() -> tuple[bytes, str]:
    """The exposition text and its content type: every process's metrics in multiprocess mode, else this one's."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def forget_process(pid: int) -> None:
    """A worker is stopping: its live gauges no longer count (its counters and histograms still do)."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def sample_pool(name: str, pool: Pool) -> None:
    """This process's connections of one pool: in use, idle, and callers waiting for one."""
    size, idle = pool.get_size(), pool.get_idle_size()
    POOL_CONNECTIONS.labels(name, "in_use").set(size - idle)
    POOL_CONNECTIONS.labels(name, "idle").set(idle)
    # asyncpg has no public count of waiters; its pool hands connections out through an asyncio queue.
    queue = getattr(pool, "_queue", None)
    POOL_WAITING.labels(name).set(len(getattr(queue, "_getters", ())))
