"""Group commit: concurrent requests are coalesced into one COPY, and each is acknowledged only after its commit."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import asyncpg

from app import queries
from app.db import Connection, Pool
from app.latest import LatestState, Record
from app.schemas import IngestResult
from app.settings import Settings

# (robot_id, time, latitude, longitude, battery_level, battery_voltage, status, seq), as the API decoded it.
Row = tuple[str, datetime, float, float, float, float | None, str | None, int | None]
CommitListener = Callable[[Sequence[Row]], None]

# Two flushes registering the same new robots, or inserting the same readings, can deadlock on the unique
# indexes; PostgreSQL resolves it by aborting one, which is then retried.
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
MAX_FLUSH_ATTEMPTS = 3

log = logging.getLogger(__name__)


class FlushError(Exception):
    """The flush carrying a request failed or timed out. Its rows may or may not be stored; a retry is safe."""


class _Pending:
    __slots__ = ("enqueued_at", "future", "rows")

    def __init__(self, rows: Sequence[Row], enqueued_at: float) -> None:
        self.rows = rows
        self.enqueued_at = enqueued_at
        self.future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()


class Ingestor:
    """Buffers submitted rows and flushes them in batches of up to ``flush_max_rows``.

    Invariants: a request's rows all go into one flush, so its acknowledgement is all-or-nothing; a future is
    resolved only after COMMIT returned, or failed with FlushError.
    """

    def __init__(self, pool: Pool, settings: Settings, latest: LatestState) -> None:
        self._pool = pool
        self._latest = latest
        self._max_rows = settings.flush_max_rows
        self._interval_s = settings.flush_interval_ms / 1000
        self._timeout_s = settings.flush_timeout_ms / 1000
        self._slots = asyncio.Semaphore(settings.flush_concurrency)
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._flushes: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        # robot_id -> robot_key, only for robots whose registration is committed.
        self._robot_keys: dict[str, int] = {}
        self._listeners: list[CommitListener] = []

    def start(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name="ingest-dispatcher")

    def add_listener(self, listener: CommitListener) -> None:
        """Call ``listener`` with each flush's newly stored rows, right after its commit."""
        self._listeners.append(listener)

    async def submit(self, rows: Sequence[Row]) -> IngestResult:
        """Queue ``rows`` and wait until they are committed (or the flush fails)."""
        if self._closing:
            raise FlushError("the service is shutting down")
        pending = _Pending(rows, asyncio.get_running_loop().time())
        self._queue.append(pending)
        self._queued_rows += len(rows)
        self._arrived.set()
        if self._queued_rows >= self._max_rows:
            self._full.set()
        return await pending.future

    async def close(self) -> None:
        """Stop taking requests, flush everything already queued, and wait for in-flight flushes."""
        self._closing = True
        self._arrived.set()
        self._full.set()
        if self._dispatcher is not None:
            await self._dispatcher
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            wait_s = self._queue[0].enqueued_at + self._interval_s - loop.time()
            if self._queued_rows < self._max_rows and wait_s > 0 and not self._closing:
                self._full.clear()
                try:
                    async with asyncio.timeout(wait_s):
                        await self._full.wait()
                except TimeoutError:
                    pass
            # The batch is taken only once a flush slot is free, so rows keep coalescing while all are busy.
            await self._slots.acquire()
            task = asyncio.create_task(self._flush(self._take_batch()))
            self._flushes.add(task)
            task.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        self._slots.release()

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        while self._queue and (not batch or rows + len(self._queue[0].rows) <= self._max_rows):
            pending = self._queue.popleft()
            batch.append(pending)
            rows += len(pending.rows)
        self._queued_rows -= rows
        return batch

    async def _flush(self, batch: list[_Pending]) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                accepted, stored = await self._write_with_retry(batch)
        except Exception as exc:
            log.warning("flush of %d requests failed: %r", len(batch), exc)
            error = FlushError("could not store the readings; retrying the same request is safe")
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        for pending, count in zip(batch, accepted, strict=True):
            if not pending.future.done():  # the client may have gone; its rows are stored all the same
                pending.future.set_result(IngestResult(count, len(pending.rows) - count))
        for listener in self._listeners:
            try:
                listener(stored)
            except Exception:
                log.exception("commit listener failed")

    async def _write_with_retry(self, batch: list[_Pending]) -> tuple[list[int], list[Row]]:
        for attempt in range(1, MAX_FLUSH_ATTEMPTS + 1):
            try:
                return await self._write(batch)
            except _RETRYABLE:
                if attempt == MAX_FLUSH_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _write(self, batch: list[_Pending]) -> tuple[list[int], list[Row]]:
        """Store a batch in one transaction; return the rows each request added, and the rows stored."""
        async with self._pool.acquire() as conn, conn.transaction():
            keys = await self._resolve_robot_keys(conn, {row[0] for pending in batch for row in pending.rows})
            # One pass over every row (this loop is the hot path): give it its key, drop repeats inside the
            # batch (the first occurrence wins), note which request it came from and each robot's newest.
            records: list[Record] = []
            rows: list[Row] = []
            owners: list[int] = []
            seen: set[tuple[int, datetime]] = set()
            newest: dict[int, Record] = {}
            for index, pending in enumerate(batch):
                for row in pending.rows:
                    key = keys[row[0]]
                    ident = (key, row[1])
                    if ident in seen:
                        continue
                    seen.add(ident)
                    record = (key, *row[1:])
                    records.append(record)
                    rows.append(row)
                    owners.append(index)
                    current = newest.get(key)
                    if current is None or record[1] > current[1]:
                        newest[key] = record
            new_flags: list[bool] | None = None
            try:
                # Fast path: plain COPY. The savepoint lets a replayed row's unique violation fall back
                # to the slow path without losing the transaction.
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        queries.TELEMETRY_TABLE, records=records, columns=queries.TELEMETRY_COLUMNS
                    )
            except asyncpg.UniqueViolationError:
                await conn.execute(queries.CREATE_STAGING_TABLE)
                await conn.copy_records_to_table(
                    queries.STAGING_TABLE, records=records, columns=queries.TELEMETRY_COLUMNS
                )
                new = {(r["robot_key"], r["time"]) for r in await conn.fetch(queries.INSERT_STAGED_SKIP_DUPLICATES)}
                new_flags = [(record[0], record[1]) in new for record in records]
                # Only what was stored may become a latest state: a replay can carry other values.
                newest = _newest_per_robot(record for record, is_new in zip(records, new_flags, strict=True) if is_new)
        self._latest.note(newest)  # only now: the transaction is committed
        self._robot_keys.update(keys)
        accepted = [0] * len(batch)
        if new_flags is None:
            for owner in owners:
                accepted[owner] += 1
            return accepted, rows
        for owner, is_new in zip(owners, new_flags, strict=True):
            accepted[owner] += is_new
        return accepted, [row for row, is_new in zip(rows, new_flags, strict=True) if is_new]

    async def _resolve_robot_keys(self, conn: Connection, robot_ids: set[str]) -> dict[str, int]:
        cached = self._robot_keys
        keys = {robot_id: cached[robot_id] for robot_id in robot_ids if robot_id in cached}
        missing = sorted(robot_ids - keys.keys())  # sorted: concurrent registrations lock in one order
        if missing:
            await conn.execute(queries.REGISTER_ROBOTS, missing)
            for record in await conn.fetch(queries.SELECT_ROBOT_KEYS, missing):
                keys[record["robot_id"]] = record["robot_key"]
        return keys


def _newest_per_robot(records: Iterable[Record]) -> dict[int, Record]:
    newest: dict[int, Record] = {}
    for record in records:
        current = newest.get(record[0])
        if current is None or record[1] > current[1]:
            newest[record[0]] = record
    return newest
