"""A background job run every so often in each process, until the process stops.

Stopped by an event, not by cancelling: on Python 3.11 a cancellation that lands just as an ``asyncio.wait_for``
completes can be lost, and a cancelled loop would then never end (the metrics sampler hung the tests that way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """Calls ``tick`` (the method, or the ``call`` given) at once and then every ``interval_s``; a failing tick is
    tried again next time. Failures are logged when they start and when they stop, not at every interval (a
    database outage would flood the log). Every background loop of the service is one of these."""

    def __init__(self, name: str, interval_s: float, call: Callable[[], Awaitable[object]] | None = None) -> None:
        self._name = name
        self._interval_s = interval_s
        self._call = call
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> None:
        if self._call is None:
            raise NotImplementedError
        await self._call()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def close(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:
                if not failing:
                    log.exception("%s failed; trying again every %g s", self._name, self._interval_s)
                failing = True
            else:
                if failing:
                    log.warning("%s works again", self._name)
                failing = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._stopping.wait()
