"""Runs retention in each process: at start-up and then hourly, dropping whole chunks past FLEET_RETENTION."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from app.db import retention
from app.db.pool import Pool
from app.periodic import Periodic

RETENTION_CHECK_S = 3600.0  # chunks are a day long: an hourly check drops each within an hour of expiring

log = logging.getLogger(__name__)


class Retention(Periodic):
    def __init__(self, pool: Pool, period: timedelta, check_s: float = RETENTION_CHECK_S) -> None:
        super().__init__("retention", check_s)
        self._pool = pool
        self._period = period

    async def tick(self) -> None:
        await self.apply_once()

    async def apply_once(self) -> int | None:
        """Drop what is past the retention period now; the chunks dropped (None: another process was at it)."""
        dropped = await retention.drop_chunks_before(self._pool, datetime.now(UTC) - self._period)
        if dropped:
            log.info("retention dropped %d chunk(s) older than %s", dropped, self._period, extra={"chunks": dropped})
        return dropped
