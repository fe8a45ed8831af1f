"""``python -m app``: serve the API with uvicorn, as the server settings (FLEET_HOST, FLEET_PORT, ...) say; and the
process-wide settings of a serving process (the collector's thresholds, the metrics directory), set here only."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile

import uvicorn

from app.cli.serve_limits import GuardedHttpProtocol
from app.platform.logs import logging_config
from app.platform.settings import ServerSettings, load_settings
from app.web.app import create_app


def main() -> None:
    settings = load_settings()  # read here too, so that a misspelt variable stops start-up at once
    # Prometheus's multiprocess mode: each worker writes its metrics to files here, and a scrape sums them. It
    # must be set before any worker imports the client; a fresh directory per server start.
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        metrics_dir = tempfile.mkdtemp(prefix="fleet-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    else:
        metrics_dir = None
    try:
        _serve(settings.server, settings.worker_count)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(server: ServerSettings, workers: int) -> None:
    uvicorn.run(
        "app.cli.serve:create_served_app",
        factory=True,
        host=server.host,
        port=server.port,
        workers=workers,
        log_level=server.log_level,
        log_config=logging_config(server.log_format, server.log_level),
        access_log=False,  # the app writes its own access line, with the request id (app.web.access_log)
        http=GuardedHttpProtocol,
        timeout_keep_alive=server.idle_timeout_s,
        limit_concurrency=server.max_connections,
        # Live streams never end on their own: give them this long before shutdown drains the ingest buffer.
        timeout_graceful_shutdown=5,
    )


GC_YOUNG_THRESHOLD = 50_000  # allocations between young-generation collections (Python's default: 700)


def create_served_app() -> object:
    """The app as each uvicorn worker builds it, with this process's collector tuned. A flush allocates tens of
    thousands of tuples and rows, and with the default threshold (700) a young collection ran every few hundred
    of them: 10 % of the API's CPU per batched row (py-spy --native). That garbage is freed by reference counting;
    collections only find cycles, which ingest does not make. What is built here lives as long as the process:
    frozen, full collections triggered by request garbage do not rescan it (a tail-latency cost)."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
    app = create_app(load_settings())
    gc.freeze()
    return app
