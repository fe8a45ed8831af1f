"""Streams across processes: every flush's commit notice names its commit position, and each process whose live
subscribers could want its rows reads them back and publishes them, so a subscriber on any worker or instance sees
every commit, database restarts included.

Notices are lost while the LISTEN connection is down, and so are any in flight when it drops. So the relay knows
a position below which every flush has been published here (``low``) and which flushes above it were (``published``,
this process's own claimed before they commit). After every (re)LISTEN it reads the flushes stored since ``low``
that it has not published: what it missed, late but once. A checkpoint every second moves ``low`` forward: it takes
the position below which every transaction has ended and sends it as a notice of its own; notices arrive in commit
order, so when that one arrives, every flush below the position was noticed here, and ``published`` is pruned.
"""

from __future__ import annotations

import asyncio
import logging

from app.platform.periodic import Periodic
from app.platform.pool import Pool
from app.telemetry import store as telemetry
from app.telemetry.fanout import Broadcaster, encode_reading

MAX_PENDING = 10_000  # notices waiting to be read; past it they are dropped (and logged), never waited on
CHECKPOINT_S = 1.0
FLUSH, CHECKPOINT = "f", "c"  # the kinds of notice on sql.COMMIT_CHANNEL: "<kind> <instance> <position>"
_SWEEP = -1  # queued after every (re)LISTEN: read what was missed

log = logging.getLogger(__name__)


class CommitRelay(Periodic):
    def __init__(self, instance: str, pool: Pool, broadcaster: Broadcaster) -> None:
        super().__init__("commit-relay-checkpoints", CHECKPOINT_S)
        self._instance = instance
        self._pool = pool
        self._broadcaster = broadcaster
        self._low: int | None = None  # every flush below it is published here; None: not known yet
        self._listened = False
        self._published: set[int] = set()  # flushes at or above low published here (or being read)
        self._pending: asyncio.Queue[tuple[str, int]] = asyncio.Queue(MAX_PENDING)
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        super().start()
        self._reader = asyncio.create_task(self._publish_forever(), name="commit-relay")

    async def close(self) -> None:
        await super().close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    def claim(self, position: int) -> None:
        """A flush of this process, before its COMMIT: published here by the ingestor, never read back."""
        self._published.add(position)

    def release(self, position: int) -> None:
        """A flush of this process failed, as far as it knows: if it committed all the same, read it back."""
        self._published.discard(position)
        self._enqueue(FLUSH, position)

    def on_listening(self) -> None:
        """A LISTEN is (again) in place: what was committed meanwhile is read once the queue gets to it."""
        self._listened = True
        self._enqueue(CHECKPOINT, _SWEEP)

    def on_notice(self, payload: str) -> None:
        """A commit notice (a flush of any process) or a checkpoint (this process's or another's)."""
        kind, instance, number = payload.split(" ")
        position = int(number)
        if kind == CHECKPOINT:
            if instance == self._instance:
                self._enqueue(CHECKPOINT, position)
        elif position not in self._published:  # this process's own flushes are claimed before they commit
            if self._broadcaster.wants_readings:
                self._enqueue(FLUSH, position)
            else:  # nobody to stream it to now; a later sweep must not send it to a later subscriber
                self._published.add(position)

    async def tick(self) -> None:
        if self._low is None:
            if self._listened:  # the first sweep failed: any position taken since the first LISTEN will do
                self._low = await telemetry.fetch_committed_below(self._pool)
            return
        await telemetry.send_checkpoint(self._pool, CHECKPOINT + " " + self._instance)

    def _enqueue(self, kind: str, position: int) -> None:
        try:
            self._pending.put_nowait((kind, position))
        except asyncio.QueueFull:
            log.warning("commit relay is %d notices behind: a flush of another process is not streamed here",
                        MAX_PENDING)  # fmt: skip

    async def _publish_forever(self) -> None:
        while True:
            kind, position = await self._pending.get()
            try:
                if kind == FLUSH:
                    await self._publish(position)
                elif position == _SWEEP:
                    await self._sweep()
                else:  # every flush below position was noticed before this checkpoint
                    self._low = position
                    self._published = {p for p in self._published if p >= position}
            except Exception:
                log.exception("could not read flushes committed by another process; they are not streamed here")

    async def _publish(self, position: int) -> None:
        if position in self._published:
            return
        rows = await telemetry.fetch_flush(self._pool, position)
        if rows:  # none: not committed (yet); its notice, or the next sweep, brings it back here
            self._published.add(position)
            self._broadcaster.publish_events([(where, encode_reading(reading)) for where, reading in rows])

    async def _sweep(self) -> None:
        if self._low is None:  # the first LISTEN: no subscriber could have wanted anything before it
            self._low = await telemetry.fetch_committed_below(self._pool)
            return
        if not self._broadcaster.wants_readings:
            return
        missed = [p for p in await telemetry.fetch_flushes_since(self._pool, self._low) if p not in self._published]
        if missed:
            log.warning("commit relay: %d flushes committed while notices were not heard, streamed now", len(missed))
        for position in missed:
            await self._publish(position)
