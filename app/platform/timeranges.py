"""Time ranges, bucket widths and zones as the read routes take them; pure, so unit-tested without a database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from app.model.errors import BadBucket, BadParameter, BadRange, BadZone

# Wide enough for any stored reading, narrow enough for PostgreSQL's timestamptz range.
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9999, 1, 1, tzinfo=UTC)

# Every duration parameter: a whole number and a unit (30s, 5m, 1h, 1d), or bare whole seconds. fullmatch, so
# no trailing newline slips through.
_DURATION = re.compile(r"([1-9][0-9]{0,7})|([1-9][0-9]{0,5})(s|m|h|d)")
DURATION_PATTERN = "^([1-9][0-9]{0,7}|[1-9][0-9]{0,5}[smhd])$"  # the same grammar, for the OpenAPI document
# IANA names: letters, digits and _+-, in at most three /-separated parts ("America/Argentina/Buenos_Aires").
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,29}(/[A-Za-z0-9_+-]{1,30}){0,2}")
ZONE_PATTERN = f"^{_ZONE_NAME.pattern}$"  # the same, for the OpenAPI document
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# The widest each parameter may be (a 400 above), kept here with their grammar so the fuzzer reads them too.
MAX_STALE_AFTER = timedelta(days=366)  # a year: beyond it "offline" means nothing, and far beyond, dates overflow
MAX_STATIONARY_WINDOW = timedelta(days=1)
MAX_DISTANCE_RANGE = timedelta(days=31)


def aware(value: datetime) -> datetime:
    """Query times without a zone are taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def duration_seconds(text: str) -> int | None:
    """Seconds a duration in the one syntax names (30s, 5m, 1h, 1d, or bare seconds); None if it is not one."""
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    return int(match[1]) if match[1] else int(match[2]) * _UNIT_S[match[3]]


def parse_duration(text: str, name: str, maximum: timedelta) -> timedelta:
    """A duration parameter ('30s', '5m', '1h', '1d' or bare seconds such as '300'), at most ``maximum``."""
    seconds = duration_seconds(text)
    if seconds is None:
        raise BadParameter(f"{name} must be a whole number and a unit s, m, h or d (like 30s or 5m), or seconds")
    if seconds > maximum.total_seconds():
        raise BadParameter(f"{name} may be at most {int(maximum.total_seconds()):,} s")
    return timedelta(seconds=seconds)


def parse_bucket(text: str) -> timedelta:
    """A bucket width in the duration syntax. A day is 86,400 s here; with a zone, day buckets follow local
    days (DST included) because the query steps by calendar days for them."""
    seconds = duration_seconds(text)
    if seconds is None:
        raise BadBucket("bucket must be a whole number and a unit s, m, h or d, like 1m or 1h")
    return timedelta(seconds=seconds)


def parse_time(text: str, name: str) -> datetime:
    """An RFC 3339 date-time (``2026-11-27T08:00:00Z``); without an offset it is UTC. Numbers are refused: an
    epoch value in a time parameter is almost always a unit mistake, and the schema says date-time."""
    return _clamp(_read_time(text, name))


def _read_time(text: str, name: str) -> datetime:
    try:
        value = msgspec.convert(text, datetime)  # strict: a string in RFC 3339 form, nothing else
    except msgspec.ValidationError:
        raise BadParameter(f"{name} must be an RFC 3339 date-time, like 2026-11-27T08:00:00Z") from None
    return aware(value)


def _clamp(value: datetime) -> datetime:
    # To what PostgreSQL stores and readings can carry: nothing is stored outside, so answers are equal, and
    # arithmetic on the bounds cannot overflow.
    return min(max(value, MIN_TIME), MAX_TIME)


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


def parse_range(
    since: str | None, until: str | None, max_span: timedelta | None = None
) -> tuple[datetime | None, datetime | None]:
    """The ``since`` and ``until`` parameters, parsed and checked together as given (then clamped: a range wholly
    before 1970 is an empty answer, not a reversed one); with ``max_span``, ``until`` (default now) is at most that
    long after ``since``."""
    start = _read_time(since, "since") if since is not None else None
    end = _read_time(until, "until") if until is not None else None
    check_range(start, end)
    if max_span is not None and start is not None and (end or datetime.now(UTC)) - start > max_span:
        raise BadRange(f"until must be after since, by at most {max_span.days} days")
    return (None if start is None else _clamp(start)), (None if end is None else _clamp(end))


def check_bucket_count(since: datetime, until: datetime, width: timedelta, max_buckets: int) -> None:
    if until <= since:  # a since after now with until defaulted, or a range wholly before 1970
        raise BadRange("until must be after since, and after 1970-01-01 for buckets")
    count = (until - since) / width
    if count > max_buckets:
        raise BadBucket(f"{count:,.0f} buckets requested; at most {max_buckets:,} per response")
