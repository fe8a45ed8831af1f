"""The gauges that describe a moment (pools, subscribers, the database), sampled in each process every second."""

from __future__ import annotations

import asyncio
import contextlib

from app import metrics
from app.db import robots
from app.db.pool import Pool
from app.ingest.fanout import Broadcaster

SAMPLE_INTERVAL_S = 1.0
PING_EVERY = 5  # samples: the database is asked whether it answers every 5 s
PING_TIMEOUT_S = 2.0


class Sampler:
    """Stopped by ``close``, not by cancelling: a cancellation that lands as a ping completes can be lost inside
    ``asyncio.wait_for`` on Python 3.11, and the task would then never end."""

    def __init__(self, pools: dict[str, Pool], control_pool: Pool, broadcaster: Broadcaster) -> None:
        self._pools = pools
        self._control_pool = control_pool
        self._broadcaster = broadcaster
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample_forever(), name="metrics-sampler")

    async def close(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _sample_forever(self) -> None:
        tick = 0
        while not self._stopping.is_set():
            for name, pool in self._pools.items():
                metrics.sample_pool(name, pool)
            metrics.STREAM_SUBSCRIBERS.set(self._broadcaster.subscriber_count)
            if tick % PING_EVERY == 0:
                metrics.DATABASE_UP.set(1 if await self._database_answers() else 0)
            tick += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SAMPLE_INTERVAL_S):
                    await self._stopping.wait()

    async def _database_answers(self) -> bool:
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                await robots.ping(self._control_pool)
        except Exception:  # down, frozen or refusing: all the same to this gauge
            return False
        return True
