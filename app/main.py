"""``create_app(settings)``: wires settings, routes, the lifespan and error handling into one Litestar app."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin

from app.db import apply_migrations, create_pool
from app.export import export_csv
from app.fleet import FleetController
from app.health import health
from app.ingest import Ingestor
from app.latest import LatestState, reconcile
from app.openapi import add_body_schemas, build_openapi_config
from app.problems import from_http_exception, from_out_of_range, from_timeout
from app.robots import RobotsController
from app.settings import Settings, load_settings
from app.state import Services, set_services
from app.stream import Broadcaster, stream_telemetry
from app.telemetry import TelemetryController


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await apply_migrations(settings.database_url)
        pool = await create_pool(settings)
        await reconcile(pool)  # latest state that a crash left unwritten
        latest = LatestState(pool, settings.latest_interval_ms)
        latest.start()
        ingestor = Ingestor(pool, settings, latest)
        broadcaster = Broadcaster(settings.stream_queue_size)
        ingestor.add_listener(broadcaster.publish)
        ingestor.start()
        set_services(
            app, Services(settings=settings, pool=pool, ingestor=ingestor, broadcaster=broadcaster, latest=latest)
        )
        # Everything built so far lives as long as the process: move it out of the collector's way, so that
        # full collections triggered by request garbage do not rescan it (a tail-latency cost).
        gc.freeze()
        try:
            yield
        finally:
            # Order matters: live streams end first, then every queued reading is flushed (and acknowledged),
            # then the latest state they moved is written, and only then does the pool close.
            broadcaster.close()
            await ingestor.close()
            await latest.close()
            await pool.close()
            set_services(app, None)

    app = Litestar(
        route_handlers=[
            health,
            stream_telemetry,
            export_csv,
            TelemetryController,
            RobotsController,
            FleetController,
        ],
        lifespan=[lifespan],
        openapi_config=build_openapi_config(),
        plugins=[
            ProblemDetailsPlugin(
                ProblemDetailsConfig(
                    exception_to_problem_detail_map={
                        HTTPException: from_http_exception,
                        OverflowError: from_out_of_range,
                        asyncpg.DataError: from_out_of_range,
                        TimeoutError: from_timeout,
                    }
                )
            )
        ],
        request_max_body_size=settings.max_body_bytes,
    )
    add_body_schemas(app)
    return app
