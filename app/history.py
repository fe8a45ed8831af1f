"""One robot's stored readings, newest first, in keyset pages with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

import msgspec

from app import queries
from app.db import Pool
from app.schemas import HistoryPage, Location, StoredReading

# Wide enough for any stored reading, narrow enough for PostgreSQL's timestamptz range.
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9999, 1, 1, tzinfo=UTC)
_EPOCH = MIN_TIME


class _Cursor(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    before_us: int  # microseconds since the epoch of the last reading already returned


_encode_cursor = msgspec.msgpack.Encoder().encode
_decode_cursor = msgspec.msgpack.Decoder(_Cursor).decode


class BadCursor(ValueError):
    pass


def encode_cursor(before: datetime) -> str:
    us = (before - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(_encode_cursor(_Cursor(us))).decode().rstrip("=")


def decode_cursor(token: str) -> datetime:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return _EPOCH + timedelta(microseconds=_decode_cursor(raw).before_us)
    except (binascii.Error, ValueError, OverflowError, msgspec.DecodeError):
        raise BadCursor("cursor is not one this API issued") from None


async def fetch_robot_key(pool: Pool, robot_id: str) -> int | None:
    key: int | None = await pool.fetchval(queries.SELECT_ROBOT_KEY, robot_id)
    return key


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
    rows = await pool.fetch(
        queries.SELECT_HISTORY_PAGE, robot_key, since or MIN_TIME, until or MAX_TIME, before, limit + 1
    )
    readings = [
        StoredReading(
            timestamp=row["time"],
            location=Location(latitude=row["latitude"], longitude=row["longitude"]),
            battery_level=row["battery_level"],
            battery_voltage=row["battery_voltage"],
            status=row["status"],
            seq=row["seq"],
        )
        for row in rows[:limit]
    ]
    next_cursor = encode_cursor(readings[-1].timestamp) if len(rows) > limit else None
    return HistoryPage(robot_id=robot_id, readings=readings, next_cursor=next_cursor)
