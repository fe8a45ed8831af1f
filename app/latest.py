"""Each robot's latest state: gathered in memory after every commit, written to the registry in one UPDATE at
most every ``latest_interval_ms``, and only ever moved forward in time.

Writing it once per interval instead of once per flush keeps its cost per robot, not per reading: with small
flushes the per-flush UPDATE had doubled PostgreSQL's CPU per stored reading. Readers call ``sync()`` first, so
a process always reads its own acknowledged writes; across processes the state lags by at most one interval. A
crash can lose only unwritten latest state, which ``reconcile()`` recomputes from the readings at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

from app import queries
from app.db import Pool

log = logging.getLogger(__name__)

# (robot_key, time, latitude, longitude, battery_level, battery_voltage, status, seq): the telemetry columns.
Record = tuple[int, datetime, float, float, float, float | None, str | None, int | None]


class LatestState:
    def __init__(self, pool: Pool, interval_ms: int) -> None:
        self._pool = pool
        self._interval_s = interval_ms / 1000
        self._pending: dict[int, Record] = {}  # robot_key -> newest committed record not yet written
        self._lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_periodically(), name="latest-state-writer")

    def note(self, newest: Mapping[int, Record]) -> None:
        """Record each robot's newest reading of a committed flush (call only after COMMIT)."""
        pending = self._pending
        for key, record in newest.items():
            current = pending.get(key)
            if current is None or record[1] > current[1]:
                pending[key] = record

    async def sync(self) -> None:
        """Write what is pending now, so that a read that follows sees every acknowledged reading."""
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            try:
                columns = [list(column) for column in zip(*sorted(batch.values()), strict=True)]
                await self._pool.execute(queries.UPDATE_LATEST, *columns)
            except BaseException:
                self.note(batch)  # keep it for the next attempt; newer notes since then still win
                raise

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        try:
            await self.sync()
        except Exception as exc:  # the next start-up's reconcile() recomputes it from the stored readings
            log.warning("latest state not written at shutdown: %r", exc)

    async def _write_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.sync()
            except Exception as exc:
                log.warning("latest state not written, will retry: %r", exc)


async def reconcile(pool: Pool) -> None:
    """Move each robot's latest state up to its newest stored reading (after a crash lost unwritten state)."""
    await pool.execute(queries.RECONCILE_LATEST)
