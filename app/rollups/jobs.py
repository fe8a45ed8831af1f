"""Keeps the rollups up to date in each process (one pass at a time across processes), so that bucket queries of
an hour or wider read minutes instead of readings, and daily activity and distances read quarter hours."""

from __future__ import annotations

from app.platform.periodic import Periodic
from app.platform.pool import Pool
from app.rollups import store as rollups


class Rollups(Periodic):
    def __init__(self, pool: Pool, interval_s: float, status_gap_s: int) -> None:
        super().__init__("rollups", interval_s)
        self._pool = pool
        self._status_gap_s = status_gap_s

    async def tick(self) -> None:
        await self.pass_once()

    async def pass_once(self) -> int | None:
        """One pass now: the new watermark, a commit position (None: another process was running one)."""
        return await rollups.roll_up_stored(self._pool, self._status_gap_s)
