"""Group commit: concurrent requests are coalesced into one COPY, and each is acknowledged only after its commit."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg

from app.auth import registry
from app.model.errors import FleetError, StorageUnavailable
from app.model.payloads import IngestResult
from app.model.principal import ANONYMOUS, Principal
from app.model.reading import Row, candidate
from app.platform import metrics
from app.platform.pool import Connection, Pool
from app.platform.settings import IngestSettings
from app.telemetry import store as telemetry
from app.telemetry.batch import count_accepted, newest_per_robot, prepare_batch
from app.telemetry.commits import CommitListener, CommitOrder
from app.telemetry.decoding import Window, parse_rows
from app.telemetry.latest import LatestState
from app.telemetry.writers import WriterCheck

# Two flushes registering the same new robots, or inserting the same readings, can deadlock on the unique
# indexes; PostgreSQL resolves it by aborting one, which is then retried.
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
MAX_FLUSH_ATTEMPTS = 3
EXPIRY_CHECK_S = 0.1  # how often queued requests are checked against their deadline

log = logging.getLogger(__name__)


class FlushClaims(Protocol):
    def claim(self, position: int) -> None: ...
    def release(self, position: int) -> None: ...


class _Pending:
    __slots__ = ("enqueued_at", "future", "rows", "writer")

    def __init__(self, rows: Sequence[Row], enqueued_at: float, writer: int) -> None:
        self.rows = rows
        self.enqueued_at = enqueued_at  # loop time, for deadlines
        self.writer = writer  # the credential that sent it (0 with authentication off)
        self.future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()


class Ingestor:
    """Buffers submitted rows and flushes them in batches of up to ``flush_max_rows``.

    Invariants: a request's rows all go into one flush, so its acknowledgement is all-or-nothing; a future is
    resolved only after COMMIT returned, or failed with StorageUnavailable.
    """

    def __init__(self, pool: Pool, settings: IngestSettings, latest: LatestState) -> None:
        self._pool = pool
        self._settings = settings
        self._latest = latest
        self._max_rows = settings.flush_max_rows
        self._interval_s = settings.flush_interval_ms / 1000
        self._timeout_s = settings.flush_timeout_ms / 1000
        self._max_future = timedelta(seconds=settings.max_future_s)
        self._max_past = timedelta(seconds=settings.max_past_s)
        self._slots = asyncio.Semaphore(settings.flush_concurrency)
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._queued_by_writer: dict[int, int] = {}
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._flushes: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._expiry: asyncio.Task[None] | None = None
        self._failing = False  # flushes are failing: logged once when it starts and once when it ends
        # robot_id -> robot_key, only for robots whose registration is committed.
        self._robot_keys: dict[str, int] = {}
        self._writers = WriterCheck(pool)
        self._commits = CommitOrder()
        self._claims: list[FlushClaims] = []
        # Names this ingestor in the commit notices other processes get (app.telemetry.relay).
        self.instance = secrets.token_hex(8)

    def start(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name="ingest-dispatcher")
        self._expiry = asyncio.create_task(self._expire_queued(), name="ingest-deadlines")

    def add_claims(self, claims: FlushClaims) -> None:
        """Tell ``claims`` each flush's commit position inside its transaction, before COMMIT, and release it if
        the flush then fails."""
        self._claims.append(claims)

    def add_listener(self, listener: CommitListener) -> None:
        """Call ``listener`` with each flush's newly stored rows after its commit, flushes in order."""
        self._commits.add_listener(listener)

    async def ingest_body(self, body: bytes, writer: Principal) -> IngestResult:
        """Decode and check a POSTed body, check the writer may write each reading, then store it: the whole
        ingest use case behind the route."""
        try:
            return await self._ingest_body(body, writer)
        except FleetError as exc:
            metrics.READINGS_REJECTED.labels(exc.kind.value).inc()
            raise

    async def _ingest_body(self, body: bytes, writer: Principal) -> IngestResult:
        received_at = datetime.now(UTC)
        window = Window.around(received_at, self._max_future, self._max_past)
        rows = parse_rows(body, window, self._settings.max_readings_per_request)
        if not rows:
            return IngestResult(accepted=0, duplicates=0)
        if writer is not ANONYMOUS:
            await self._writers.check(writer, rows)
        return await self.submit(rows, writer.credential_id)

    def forget_provisioning(self) -> None:
        """Credentials or robots changed: look provisioning up again."""
        self._writers.forget()

    def forget_robots(self) -> None:
        """The robots' registry was emptied behind this process (a restore into a running service; the tests'
        emptied database): look every robot's key up again."""
        self._robot_keys.clear()

    async def submit(self, rows: Sequence[Row], writer: int = 0) -> IngestResult:
        """Queue ``rows`` and wait until they are committed (or the flush fails)."""
        if self._closing:
            raise self._unavailable("the service is shutting down")
        # Shed load at once rather than let memory and latency grow: the bound is the queue's size, and one
        # credential may fill only a share of it, so a flood from one client leaves room for the others.
        count = len(rows)
        if self._queued_rows + count > self._settings.max_queued_rows:
            raise self._unavailable(f"the ingest queue is full ({self._queued_rows} readings waiting)")
        mine = self._queued_by_writer.get(writer, 0)
        if writer and mine + count > self._settings.max_queued_rows_per_credential:
            raise self._unavailable(f"this credential has {mine} readings waiting already")
        pending = _Pending(rows, asyncio.get_running_loop().time(), writer)
        self._queue.append(pending)
        self._queued_rows += count
        self._queued_by_writer[writer] = mine + count
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
        if self._expiry is not None:
            self._expiry.cancel()
            await asyncio.gather(self._expiry, return_exceptions=True)
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    def _unavailable(self, detail: str) -> StorageUnavailable:
        return StorageUnavailable(detail, retry_after_s=self._settings.retry_after_s)

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
            task = asyncio.create_task(self._flush(self._take_batch(), self._commits.reserve()))
            self._flushes.add(task)
            task.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        self._slots.release()

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        while self._queue and (not batch or rows + len(self._queue[0].rows) <= self._max_rows):
            pending = self._dequeue()
            batch.append(pending)
            rows += len(pending.rows)
        metrics.QUEUED_ROWS.set(self._queued_rows)  # sampled once per flush, not per request
        return batch

    def _dequeue(self) -> _Pending:
        pending = self._queue.popleft()
        count = len(pending.rows)
        self._queued_rows -= count
        left = self._queued_by_writer[pending.writer] - count
        if left:
            self._queued_by_writer[pending.writer] = left
        else:
            del self._queued_by_writer[pending.writer]
        return pending

    async def _flush(self, batch: list[_Pending], seq: int) -> None:
        stored: tuple[Sequence[Row], datetime | None] = ((), None)
        try:
            stored = await self._commit(batch)
        finally:
            self._commits.end(seq, *stored)  # also when it failed: later flushes must not wait for it

    async def _commit(self, batch: list[_Pending]) -> tuple[Sequence[Row], datetime | None]:
        """Write a batch and answer its requests; return the rows it stored (none if it failed) and their
        ``stored_at``."""
        # Every request's deadline is its arrival plus the flush timeout; the batch's is its oldest request's.
        loop = asyncio.get_running_loop()
        started = loop.time()
        write = asyncio.create_task(self._write_with_retry(batch))
        done, _ = await asyncio.wait({write}, timeout=max(0.0, batch[0].enqueued_at + self._timeout_s - loop.time()))
        if not done:
            # Answer now; a frozen database can make even the cancellation wait. The slot stays taken until the
            # write has really ended, so hung writes cannot pile up.
            write.cancel()
            self._fail(batch, TimeoutError(f"not committed within {self._timeout_s:g} s"))
            await asyncio.gather(write, return_exceptions=True)
            return (), None
        if (exc := write.exception()) is not None:
            self._fail(batch, exc)
            return (), None
        accepted, rows, stored_at = write.result()
        sent, stored = sum(len(pending.rows) for pending in batch), sum(accepted)
        metrics.FLUSH_SECONDS.observe(loop.time() - started)
        metrics.FLUSH_ROWS.observe(sent)
        metrics.READINGS_ACCEPTED.inc(stored)
        metrics.READINGS_DUPLICATE.inc(sent - stored)
        if self._failing:
            self._failing = False
            log.warning("storage is back: flushes commit again")
        for pending, count in zip(batch, accepted, strict=True):
            if not pending.future.done():  # the client may have gone; its rows are stored all the same
                pending.future.set_result(IngestResult(count, len(pending.rows) - count))
        return rows, stored_at

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        """Answer the batch's requests with 503; log the outage once when it starts, not once per flush."""
        metrics.FLUSH_FAILURES.inc()
        if not self._failing:
            self._failing = True
            log.warning("storage unavailable, ingest answers 503 until a flush commits again: %r", exc)
        error = self._unavailable("could not store the readings in time; retrying the same request is safe")
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)

    async def _expire_queued(self) -> None:
        """Requests still queued at their deadline get their 503 then, whatever holds the flushes up."""
        loop = asyncio.get_running_loop()
        queue = self._queue
        while True:
            await asyncio.sleep(EXPIRY_CHECK_S)
            now = loop.time()
            expired: list[_Pending] = []
            while queue and queue[0].enqueued_at + self._timeout_s <= now:
                expired.append(self._dequeue())
            if expired:
                self._fail(expired, TimeoutError("no flush slot came free in time"))

    async def _write_with_retry(self, batch: list[_Pending]) -> tuple[list[int], list[Row], datetime]:
        for attempt in range(1, MAX_FLUSH_ATTEMPTS + 1):
            try:
                return await self._write(batch)
            except _RETRYABLE:
                if attempt == MAX_FLUSH_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _write(self, batch: list[_Pending]) -> tuple[list[int], list[Row], datetime]:
        """Store a batch in one transaction; return the rows each request added, the rows stored, and their
        ``stored_at`` (the transaction's start: what orders the live stream)."""
        position = None
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                keys = await self._resolve_robot_keys(conn, {row[0] for pending in batch for row in pending.rows})
                prepared = prepare_batch([p.rows for p in batch], keys)
                new_flags = await telemetry.insert_records(conn, prepared.records)
                stored_at, position = await telemetry.fetch_transaction_time(conn, self.instance)
                for claims in self._claims:  # before COMMIT: no catch-up read can find these rows unclaimed
                    claims.claim(position)
        except BaseException:
            # Answered 503, yet the COMMIT may have gone through (a cancel or a lost connection leaves it open):
            # whoever claimed the flush must look for its rows instead of taking it as published.
            if position is not None:
                for claims in self._claims:
                    claims.release(position)
            raise
        newest, rows = prepared.newest, prepared.rows
        if new_flags is not None:
            # Only what was stored may become a latest state or be streamed: a replay can carry other values.
            newest = newest_per_robot(r for r, is_new in zip(prepared.records, new_flags, strict=True) if is_new)
            rows = [row for row, is_new in zip(rows, new_flags, strict=True) if is_new]
        # Only now: the transaction is committed. Ranked by stored_at, as app.derived ranks every committed reading,
        # so this fast path and the database's follow-up agree on which reading is newest.
        self._latest.note({key: candidate(record, stored_at) for key, record in newest.items()})
        self._robot_keys.update(keys)
        return count_accepted(prepared.owners, new_flags, len(batch)), rows, stored_at

    async def _resolve_robot_keys(self, conn: Connection, robot_ids: set[str]) -> dict[str, int]:
        cached = self._robot_keys
        keys = {robot_id: cached[robot_id] for robot_id in robot_ids if robot_id in cached}
        missing = sorted(robot_ids - keys.keys())  # sorted: concurrent registrations lock in one order
        if missing:
            keys.update(await registry.register_robots(conn, missing))
        return keys
