"""The per-process resources: opened in dependency order when the app starts, closed in reverse when it stops."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from app.auth.authenticator import Authenticator
from app.db import robots
from app.db.migrations import apply_migrations
from app.db.pool import Pool, create_pool
from app.ingest.buffer import Ingestor
from app.ingest.fanout import Broadcaster
from app.ingest.latest import LatestState
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    pool: Pool
    latest: LatestState
    ingestor: Ingestor
    broadcaster: Broadcaster
    authenticator: Authenticator


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    async with AsyncExitStack() as stack:
        if settings.database.migrate_on_start:
            await apply_migrations(settings.database.database_url)
        pool = await create_pool(settings.database)
        stack.push_async_callback(pool.close)
        await robots.reconcile_latest(pool)  # latest state that a crash left unwritten
        latest = LatestState(pool, settings.ingest.latest_interval_ms)
        latest.start()
        stack.push_async_callback(latest.close)  # writes the latest state the final flushes moved
        authenticator = Authenticator(pool, settings.auth)
        await authenticator.start()
        stack.push_async_callback(authenticator.close)
        ingestor = Ingestor(pool, settings.ingest, latest)
        authenticator.on_change(ingestor.forget_provisioning)
        broadcaster = Broadcaster(settings.stream.stream_queue_size)
        ingestor.add_listener(broadcaster.publish)
        ingestor.start()
        stack.push_async_callback(ingestor.close)  # flushes (and acknowledges) every queued reading
        stack.callback(broadcaster.close)  # live streams end first
        # Everything built so far lives as long as the process: move it out of the collector's way, so that
        # full collections triggered by request garbage do not rescan it (a tail-latency cost).
        gc.freeze()
        yield Services(
            settings=settings,
            pool=pool,
            latest=latest,
            ingestor=ingestor,
            broadcaster=broadcaster,
            authenticator=authenticator,
        )
