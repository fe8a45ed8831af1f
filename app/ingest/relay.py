"""Streams across processes: every flush's commit notice names its rows, and each process whose live subscribers
could want them reads them back and publishes them, so a subscriber on any worker or instance sees every commit.

A process ignores its own notices (it published those rows already, in order). Remote rows are read only while
this process has subscribers, one flush after another in the order PostgreSQL delivered the notices (commit
order), and reach subscribers a little after their commit: one notice and one indexed read. A flush is named by
its stored_at (its transaction's start, to the microsecond); two flushes starting in the same microsecond would
be read together, and their rows could reach a subscriber twice, which the stream documents as possible.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from app.db import telemetry
from app.db.pool import Pool
from app.ingest.fanout import Broadcaster, encode_reading
from app.timeranges import MIN_TIME

MAX_PENDING_FLUSHES = 10_000  # notices waiting to be read; past it they are dropped (and logged), never waited on

log = logging.getLogger(__name__)


class CommitRelay:
    def __init__(self, instance: str, pool: Pool, broadcaster: Broadcaster) -> None:
        self._instance = instance
        self._pool = pool
        self._broadcaster = broadcaster
        self._pending: asyncio.Queue[datetime | None] = asyncio.Queue(MAX_PENDING_FLUSHES)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._publish_forever(), name="commit-relay")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def on_notice(self, payload: str) -> None:
        """A commit notice: "<instance> <stored_at µs> <stored_xid>"."""
        instance, stored_us, _ = payload.split(" ")
        if instance == self._instance or not self._broadcaster.wants_readings:
            return
        try:
            self._pending.put_nowait(MIN_TIME + timedelta(microseconds=int(stored_us)))
        except asyncio.QueueFull:
            log.warning("commit relay is %d flushes behind: a flush of another process is not streamed here",
                        MAX_PENDING_FLUSHES)  # fmt: skip

    async def _publish_forever(self) -> None:
        while True:
            stored_at = await self._pending.get()
            if stored_at is None:
                return
            try:
                rows = await telemetry.fetch_flush(self._pool, stored_at)
            except Exception:
                log.exception("could not read a flush committed by another process; its rows are not streamed")
                continue
            self._broadcaster.publish_events([(position, encode_reading(reading)) for position, reading in rows])
