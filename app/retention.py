"""Retention, FLEET_RETENTION: whole chunks past it are dropped at start-up, then hourly, by each process. With the
community edition the database's own retention jobs are kept in step with the setting too."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from app.db import retention
from app.db.pool import Pool
from app.periodic import Periodic

RETENTION_CHECK_S = 3600.0  # chunks are a day long: an hourly check drops each within an hour of expiring

log = logging.getLogger(__name__)


class Retention(Periodic):
    def __init__(
        self, pool: Pool, period: timedelta, check_s: float = RETENTION_CHECK_S, *, policies: bool = False
    ) -> None:
        super().__init__("retention", check_s)
        self._pool = pool
        self._period = period
        self._policies = policies

    async def tick(self) -> None:
        if self._policies and await retention.set_retention_policies(self._pool, self._period):
            log.info("retention: the database's jobs drop chunks older than %s", self._period)
        # Each process still drops hourly itself: the database's background runs of the columnstore policy were
        # seen failing on TimescaleDB 2.28.3 with PostgreSQL 15 ("cannot drop portal"), and a drop a job already
        # did costs a catalogue look-up.
        await self.apply_once()

    async def apply_once(self) -> int | None:
        """Drop what is past the retention period now; the chunks dropped (None: another process was at it)."""
        dropped = await retention.drop_chunks_before(self._pool, datetime.now(UTC) - self._period)
        if dropped:
            log.info("retention dropped %d chunk(s) older than %s", dropped, self._period, extra={"chunks": dropped})
        return dropped
