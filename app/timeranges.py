"""Time ranges, bucket widths and zones as the read routes take them; pure, so unit-tested without a database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import BadBucket, BadRange, BadZone

# Wide enough for any stored reading, narrow enough for PostgreSQL's timestamptz range.
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9999, 1, 1, tzinfo=UTC)

_BUCKET = re.compile(r"([1-9][0-9]{0,5})(s|m|h|d)")  # fullmatch: no trailing newline slips through
# IANA names: letters, digits and _+-, in at most three /-separated parts ("America/Argentina/Buenos_Aires").
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,29}(/[A-Za-z0-9_+-]{1,30}){0,2}")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


def aware(value: datetime) -> datetime:
    """Query times without a zone are taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_bucket(text: str) -> timedelta:
    """'30s', '1m', '5m', '1h', '1d'. Days stay days (not 24 h), so with a zone they follow local days."""
    match = _BUCKET.fullmatch(text)
    if match is None:
        raise BadBucket("bucket must be a whole number and a unit s, m, h or d, like 1m or 1h")
    count, unit = int(match[1]), match[2]
    return timedelta(days=count) if unit == "d" else timedelta(seconds=count * _UNIT_S[unit])


def parse_zone(name: str) -> ZoneInfo:
    """The zone an IANA name names. The name is checked before the tz database is asked: ZoneInfo opens files,
    and a directory ("Europe") or an overlong name fails there with an OSError, not a lookup error."""
    unknown = BadZone(f"unknown time zone {name[:64]!r}; use an IANA name like Europe/Paris")
    if _ZONE_NAME.fullmatch(name) is None:
        raise unknown
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise unknown from None


def check_range(since: datetime | None, until: datetime | None) -> None:
    """A reversed or empty range is the client's mistake on every endpoint, not an empty answer."""
    if since is not None and until is not None and until <= since:
        raise BadRange("until must be after since")


def check_bucket_count(since: datetime, until: datetime, width: timedelta, max_buckets: int) -> None:
    check_range(since, until)
    count = (until - since) / width
    if count > max_buckets:
        raise BadBucket(f"{count:,.0f} buckets requested; at most {max_buckets:,} per response")
