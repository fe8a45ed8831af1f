"""Each robot's latest state: gathered in memory after every commit, written in one statement at most every
``latest_interval_ms``, and only ever moved forward in time.

Writing it once per interval instead of once per flush keeps its cost per robot, not per reading: with small
flushes the per-flush UPDATE had doubled PostgreSQL's CPU per stored reading. Readers go through
``fetch_states``, which writes what is pending first, so a process always reads its own acknowledged writes;
across processes the state lags by at most one interval. A crash or a failed write loses only unwritten latest
state, and the alert rounds (app.alerts.engine) write it from the committed readings, by commit position, within a
round of any process. Both rank readings by the same rule, with stored_at as when the server had them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from app.model.payloads import RobotState
from app.model.reading import Candidate, is_newer
from app.platform.periodic import Periodic
from app.platform.pool import Connection, Pool
from app.telemetry import store

log = logging.getLogger(__name__)


class LatestState:
    def __init__(self, write_pool: Pool, read_pool: Pool, interval_ms: int) -> None:
        self._pool = write_pool
        self._read_pool = read_pool
        self._interval_s = interval_ms / 1000
        self._pending: dict[int, Candidate] = {}  # robot_key -> newest committed reading not yet written
        self._lock = asyncio.Lock()
        self._writer = Periodic("latest-state-writer", self._interval_s, self.sync)

    def start(self) -> None:
        self._writer.start()

    def note(self, newest: Mapping[int, Candidate]) -> None:
        """Record each robot's newest reading of a committed flush (call only after COMMIT)."""
        pending = self._pending
        for key, challenger in newest.items():
            if is_newer(challenger, pending.get(key)):
                pending[key] = challenger

    async def sync(self) -> None:
        """Write what is pending now, so that a read that follows sees every acknowledged reading."""
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            try:
                await store.upsert_latest(self._pool, [batch[key] for key in sorted(batch)])
            except BaseException:
                self.note(batch)  # keep it for the next attempt; newer notes since then still win
                raise

    async def fetch_states(
        self,
        *,
        stale_after_s: int,
        status: str | None = None,
        battery_below: float | None = None,
        online: bool | None = None,
        robot_id: str | None = None,
    ) -> list[RobotState]:
        """Latest states, with every reading this process acknowledged reflected."""
        await self.sync()
        return await store.fetch_robot_states(
            self._read_pool,
            received_since=datetime.now(UTC) - timedelta(seconds=stale_after_s),
            status=status,
            battery_below=battery_below,
            online=online,
            robot_id=robot_id,
        )

    async def close(self) -> None:
        await self._writer.close()
        try:
            await self.sync()
        except Exception as exc:  # the alert rounds write it from the committed readings
            log.warning("latest state not written at shutdown: %r", exc)


async def follow_latest(conn: Connection, low: int, high: int) -> list[tuple[int, datetime]]:
    """In the caller's transaction (an alert round's): offer each robot's newest reading stored at positions
    [low, high) to its latest state; every robot with readings there, with that reading's stored_at."""
    return await store.follow_latest(conn, low, high)
