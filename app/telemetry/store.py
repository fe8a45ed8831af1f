"""The telemetry hypertable: the group-commit write, history pages, time buckets and the CSV export."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta
from tempfile import SpooledTemporaryFile
from zoneinfo import ZoneInfo

import asyncpg

from app.model.errors import ExportTooLarge
from app.model.payloads import Bucket, BucketSeries, HistoryPage, RobotState
from app.model.reading import COLUMNS, STATUSES, Candidate, Location, Record, Status, reading_args, stored_reading
from app.platform.cursors import Position, decode_cursor, encode_cursor
from app.platform.pool import Connection, Pool
from app.platform.timeranges import MAX_TIME, MIN_TIME, check_bucket_count, parse_bucket, parse_zone
from app.rollups import snapshots as rollups
from app.rollups.periods import MINUTE, RollupState, ceil_to, floor_to
from app.telemetry import queries as sql
from app.telemetry.batch import first_occurrences
from app.telemetry.fanout import StreamedReading

ROLLUP_MIN_WIDTH = timedelta(hours=1)  # buckets this wide or wider are summed from telemetry_1m
# An export larger than this is spooled to a temporary file: with FLEET_EXPORTS_TOTAL exports at once, their
# memory stays a few MiB (8 MiB each let 40 unread exports take 300 MB).
SPOOL_MEMORY_BYTES = 1024 * 1024
SPOOL_CHUNK_BYTES = 64 * 1024


async def insert_records(conn: Connection, records: Sequence[Record]) -> list[bool] | None:
    """Store records in the caller's transaction, skipping (robot, time) pairs already stored.

    Returns None when every record was new, else whether each one was."""
    try:
        # Fast path: plain COPY. The savepoint lets a replayed row's unique violation fall back to the slow
        # path without losing the transaction.
        async with conn.transaction():
            await conn.copy_records_to_table(sql.TELEMETRY_TABLE, records=records, columns=sql.TELEMETRY_COLUMNS)
        return None
    except asyncpg.UniqueViolationError:
        # A replay of stored rows, or a repeat inside the batch: only each (robot, time)'s first occurrence is
        # staged, and of those only what the table does not hold yet is inserted.
        first = first_occurrences(records)
        await conn.execute(sql.CREATE_STAGING_TABLE)
        staged = [record for record, is_first in zip(records, first, strict=True) if is_first]
        await conn.copy_records_to_table(sql.STAGING_TABLE, records=staged, columns=sql.TELEMETRY_COLUMNS)
        new = {(r["robot_key"], r["time"]) for r in await conn.fetch(sql.INSERT_STAGED_SKIP_DUPLICATES)}
        return [is_first and (record[0], record[1]) in new for record, is_first in zip(records, first, strict=True)]


async def fetch_history_page(
    pool: Pool,
    robot_id: str,
    robot_key: int,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> HistoryPage:
    before = decode_cursor(cursor) if cursor else MAX_TIME
    # One row more than asked tells whether a next page exists without a second query.
    rows = await pool.fetch(sql.SELECT_HISTORY_PAGE, robot_key, since or MIN_TIME, until or MAX_TIME, before, limit + 1)
    readings = [stored_reading(row) for row in rows[:limit]]
    next_cursor = encode_cursor(readings[-1].timestamp) if len(rows) > limit else None
    return HistoryPage(robot_id=robot_id, readings=readings, next_cursor=next_cursor)


async def fetch_buckets(
    pool: Pool, robot_id: str, robot_key: int, bucket: str, tz: str, since: datetime, until: datetime, max_buckets: int
) -> BucketSeries:
    width = parse_bucket(bucket)
    zone = parse_zone(tz)
    check_bucket_count(since, until, width, max_buckets)
    if _rolls_up(width, zone, since, until) and ceil_to(since, MINUTE) < floor_to(until, MINUTE):
        async with pool.acquire() as conn:
            rows = await fetch_rolled_up_buckets(conn, robot_key, width, tz, since, until)
    else:
        rows = await pool.fetch(sql.SELECT_BUCKETS, robot_key, width, tz, since, until)
    buckets = []
    for row in rows:
        start = row["bucket"].astimezone(zone)
        if not row["readings"]:  # most buckets of a long range can be empty: build those without the arithmetic
            buckets.append(Bucket(start, 0, None, None, None, None, None, None, None, {}, None))
            continue
        counts: dict[Status, int] = {status: row[status] for status in STATUSES}
        total = sum(counts.values())
        top_status: Status = max(STATUSES, key=counts.__getitem__)
        latitude = row["latitude"]
        buckets.append(
            Bucket(
                start=start,
                readings=row["readings"],
                battery_level_avg=row["battery_avg"],
                battery_level_min=row["battery_min"],
                battery_level_max=row["battery_max"],
                battery_voltage_avg=row["voltage_avg"],
                battery_voltage_min=row["voltage_min"],
                battery_voltage_max=row["voltage_max"],
                last_location=None if latitude is None else Location(latitude, row["longitude"]),
                status_share={s: round(n / total, 4) for s, n in counts.items() if n} if total else {},
                top_status=top_status if total else None,
            )
        )
    return BucketSeries(robot_id=robot_id, bucket=bucket, tz=tz, since=since, until=until, buckets=buckets)


async def fetch_rolled_up_buckets(
    conn: Connection, robot_key: int, width: timedelta, tz: str, since: datetime, until: datetime
) -> list[asyncpg.Record]:
    """SELECT_BUCKETS' rows summed from telemetry_1m's minutes where its last refresh went, from the readings
    elsewhere."""
    async with rollups.snapshot(conn) as state:
        return await fetch_buckets_in_snapshot(conn, state, robot_key, width, tz, since, until)


async def fetch_buckets_in_snapshot(
    conn: Connection,
    state: RollupState,
    robot_key: int,
    width: timedelta,
    tz: str,
    since: datetime,
    until: datetime,
) -> list[asyncpg.Record]:
    """fetch_rolled_up_buckets inside the snapshot ``state`` was read in (rollups.snapshot)."""
    first = ceil_to(since, MINUTE)
    refreshed = first if state.refreshed_to is None else max(first, min(floor_to(until, MINUTE), state.refreshed_to))
    return await conn.fetch(
        sql.SELECT_BUCKETS_ROLLED_UP, robot_key, width, tz, since, until, first, refreshed, state.refreshed_xid
    )


def _rolls_up(width: timedelta, zone: ZoneInfo, since: datetime, until: datetime) -> bool:
    """Whether buckets can be summed from whole minutes: an hour or wider (narrower ones gain little), a whole
    number of minutes, in a zone whose offsets over the range are whole minutes (every zone's today; some
    historical local mean times are not)."""
    return (
        width >= ROLLUP_MIN_WIDTH
        and width % MINUTE == timedelta(0)
        and all(_offset(t, zone) % MINUTE == timedelta(0) for t in (since, until))
    )


def _offset(t: datetime, zone: ZoneInfo) -> timedelta:
    return t.astimezone(zone).utcoffset() or timedelta(0)


async def spool_csv(
    pool: Pool, robot_id: str, robot_key: int, since: datetime, until: datetime, max_bytes: int
) -> SpooledTemporaryFile[bytes]:
    """One robot's readings in [since, until) as CSV with a header, written by COPY into a spooled file (memory
    up to SPOOL_MEMORY_BYTES, then disk); ExportTooLarge past ``max_bytes`` (no more
    than that is kept).

    The connection is held only while PostgreSQL writes, never while a slow client reads, so the query time
    limit counts database time only, and a failed COPY is an error before any byte of a 200 is sent.
    """
    spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)
    spool.write((",".join(sql.EXPORT_CSV_COLUMNS) + "\n").encode())

    overflow = False

    async def sink(chunk: bytes | bytearray) -> None:
        # Past the bound the rest is dropped, not refused here: an exception raised in the sink of a COPY with
        # arguments left asyncpg waiting for the whole query timeout (30 s) before it gave the connection back.
        nonlocal overflow
        if overflow or spool.tell() + len(chunk) > max_bytes:
            overflow = True
            return
        spool.write(chunk)

    try:
        async with pool.acquire() as conn:
            # asyncpg binds these values itself: COPY takes no server-side parameters.
            await conn.copy_from_query(sql.EXPORT_CSV, robot_id, robot_key, since, until, output=sink, format="csv")
    except BaseException:
        spool.close()
        raise
    if overflow:
        spool.close()
        raise ExportTooLarge(
            f"the export would pass {max_bytes} bytes (FLEET_MAX_EXPORT_BYTES): ask for a shorter range"
        )
    spool.seek(0)
    return spool


async def read_spool(spool: SpooledTemporaryFile[bytes]) -> AsyncIterator[bytes]:
    """The spooled export in chunks, closing (and deleting) it at the end or when the client goes away."""
    try:
        while chunk := spool.read(SPOOL_CHUNK_BYTES):
            yield chunk
    finally:
        spool.close()


async def fetch_transaction_time(conn: Connection, instance: str) -> tuple[datetime, int]:
    """The caller's transaction's start and id (the ``stored_at`` and ``stored_xid`` PostgreSQL gives every row it
    writes), and a notice to the other API processes, sent at COMMIT, naming the flush (``instance``: who sends
    it)."""
    row = await conn.fetchrow(sql.SELECT_TRANSACTION_TIME, instance)
    assert row is not None
    return row[0], row[1]


async def fetch_flush(pool: Pool, position: int) -> list[tuple[Position, StreamedReading]]:
    """One committed flush's rows (named by a commit notice's position), in stream order."""
    return _streamed(await pool.fetch(sql.SELECT_FLUSH_ROWS, position))


async def fetch_committed_below(pool: Pool) -> int:
    """A position below which every transaction has ended."""
    position: int = await pool.fetchval(sql.SELECT_COMMITTED_BELOW)
    return position


async def fetch_flushes_since(pool: Pool, position: int) -> list[int]:
    return [row[0] for row in await pool.fetch(sql.SELECT_FLUSHES_SINCE, position)]


async def send_checkpoint(pool: Pool, prefix: str) -> None:
    await pool.execute(sql.SEND_CHECKPOINT, prefix)


async def fetch_stored_since(
    pool: Pool, after: Position, oldest: datetime, robot_ids: frozenset[str] | None, limit: int
) -> list[tuple[Position, StreamedReading]]:
    """Readings stored after stream position ``after`` (and not before ``oldest``), in stream order: what a
    live-stream client that reconnects has missed, for every robot or only ``robot_ids``."""
    stored_at, robot_id, time = after
    ids = None if robot_ids is None else sorted(robot_ids)
    return _streamed(await pool.fetch(sql.SELECT_STORED_SINCE, stored_at, robot_id, time, ids, limit, oldest))


def _streamed(rows: Sequence[asyncpg.Record]) -> list[tuple[Position, StreamedReading]]:
    """Rows of (robot_id, stored_at, reading columns...) as stream positions and streamed readings."""
    return [((row[1], row[0], row[2]), StreamedReading(*reading_args(tuple(row)[2:]), row[0])) for row in rows]


# --- each robot's latest state ----------------------------------------------------------------------------------


async def upsert_latest(pool: Pool, candidates: Iterable[Candidate]) -> None:
    """Move each robot's latest state forward to the given reading; one "newer wins" ranks lower changes nothing."""
    rows = [(*record, received_at) for _, received_at, record in candidates]
    columns = [list(column) for column in zip(*rows, strict=True)]
    if columns:  # zip(*[]) gives no columns at all
        await pool.execute(sql.UPSERT_LATEST, *columns)


async def follow_latest(conn: Connection, low: int, high: int) -> list[tuple[int, datetime]]:
    """Offer each robot's newest reading stored at positions [low, high) to its latest state (what a crashed
    process left unwritten is written here); every robot with readings there, with that reading's stored_at."""
    if high <= low:
        return []
    return [(row["robot_key"], row["stored_at"]) for row in await conn.fetch(sql.FOLLOW_LATEST, low, high)]


async def fetch_robot_states(
    pool: Pool,
    *,
    received_since: datetime,
    status: str | None = None,
    battery_below: float | None = None,
    online: bool | None = None,
    robot_id: str | None = None,
) -> list[RobotState]:
    """Latest states, filtered; a robot is online when the server received a reading from it at or after
    ``received_since`` (its own clock plays no part)."""
    rows = await pool.fetch(sql.SELECT_ROBOT_STATES, status, battery_below, received_since, online, robot_id)
    width = len(COLUMNS)
    return [
        RobotState(*reading_args(row), row[width], row[width + 1], row[width + 4], row[width + 2], row[width + 3])
        for row in rows
    ]


async def forget_robot_in(conn: Connection, robot_key: int, delete_history: bool) -> None:
    """In the caller's transaction: take the robot out of the latest state and, if asked, delete its readings
    and their quarter-hour rollup (the minute aggregate follows at its next refresh)."""
    await conn.execute(sql.DELETE_ROBOT_LATEST, robot_key)
    if delete_history:
        for statement in sql.DELETE_ROBOT_READINGS:
            await conn.execute(statement, robot_key)
