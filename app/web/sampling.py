"""The gauges that describe a moment (pools, subscribers, the database), sampled in each process every second, and
the database's jobs every 10 s (for the metrics and ``GET /``)."""

from __future__ import annotations

import asyncio

from app.model.payloads import Storage
from app.platform import metrics
from app.platform.periodic import Periodic
from app.platform.pool import Pool, ping
from app.rollups import retention
from app.telemetry.fanout import Broadcaster

SAMPLE_INTERVAL_S = 1.0
PING_EVERY = 5  # samples: the database is asked whether it answers every 5 s
PING_TIMEOUT_S = 2.0
JOBS_EVERY = 10  # samples


class Sampler(Periodic):
    def __init__(self, pools: dict[str, Pool], control_pool: Pool, broadcaster: Broadcaster, storage: Storage) -> None:
        super().__init__("metrics-sampler", SAMPLE_INTERVAL_S)
        self._storage = storage
        self._pools = pools
        self._control_pool = control_pool
        self._broadcaster = broadcaster
        self._ticks = 0

    async def tick(self) -> None:
        for name, pool in self._pools.items():
            metrics.sample_pool(name, pool)
        metrics.STREAM_SUBSCRIBERS.set(self._broadcaster.subscriber_count)
        if self._ticks % PING_EVERY == 0:
            metrics.DATABASE_UP.set(1 if await self._database_answers() else 0)
        if self._ticks % JOBS_EVERY == 0:
            await self._sample_jobs()
        self._ticks += 1

    async def _sample_jobs(self) -> None:
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                jobs = await retention.fetch_jobs(self._control_pool)
        except Exception:  # the database is away: keep the last sample (the ping gauge says it is down)
            return
        self._storage.jobs = jobs
        for job in jobs:
            metrics.DATABASE_JOB_FAILURES.labels(job.name).set(job.failures)
            if job.last_success_at is not None:
                metrics.DATABASE_JOB_LAST_SUCCESS.labels(job.name).set(job.last_success_at.timestamp())

    async def _database_answers(self) -> bool:
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                await ping(self._control_pool)
        except Exception:  # down, frozen or refusing: all the same to this gauge
            return False
        return True
