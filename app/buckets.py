"""Downsampled history: one robot's readings aggregated into time buckets with TimescaleDB's time_bucket."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app import queries
from app.db import Pool
from app.schemas import STATUSES, Bucket, BucketSeries, Location, Status

_BUCKET = re.compile(r"^([1-9][0-9]{0,5})(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


class BadBucketRequest(ValueError):
    pass


def parse_bucket(text: str) -> timedelta:
    """'30s', '1m', '5m', '1h', '1d'. Days stay days (not 24 h), so with a zone they follow local days."""
    match = _BUCKET.match(text)
    if match is None:
        raise BadBucketRequest("bucket must be a whole number and a unit s, m, h or d, like 1m or 1h")
    count, unit = int(match[1]), match[2]
    return timedelta(days=count) if unit == "d" else timedelta(seconds=count * _UNIT_S[unit])


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadBucketRequest(f"unknown time zone {name!r}; use an IANA name like Europe/Paris") from None


def check_bucket_count(since: datetime, until: datetime, width: timedelta, max_buckets: int) -> None:
    if until <= since:
        raise BadBucketRequest("until must be after since")
    count = (until - since) / width
    if count > max_buckets:
        raise BadBucketRequest(f"{count:,.0f} buckets requested; at most {max_buckets:,} per response")


async def fetch_buckets(
    pool: Pool, robot_id: str, robot_key: int, bucket: str, tz: str, since: datetime, until: datetime, max_buckets: int
) -> BucketSeries:
    width = parse_bucket(bucket)
    parse_zone(tz)
    check_bucket_count(since, until, width, max_buckets)
    rows = await pool.fetch(queries.SELECT_BUCKETS, robot_key, width, tz, since, until)
    buckets = []
    for row in rows:
        counts: dict[Status, int] = {status: row[status] for status in STATUSES}
        total = sum(counts.values())
        top_status: Status = max(STATUSES, key=counts.__getitem__)
        buckets.append(
            Bucket(
                start=row["bucket"],
                readings=row["readings"],
                battery_level_avg=row["battery_avg"],
                battery_level_min=row["battery_min"],
                battery_level_max=row["battery_max"],
                battery_voltage_avg=row["voltage_avg"],
                battery_voltage_min=row["voltage_min"],
                battery_voltage_max=row["voltage_max"],
                last_location=Location(latitude=row["latitude"], longitude=row["longitude"]),
                status_share={s: round(n / total, 4) for s, n in counts.items() if n} if total else {},
                top_status=top_status if total else None,
            )
        )
    return BucketSeries(robot_id=robot_id, bucket=bucket, tz=tz, since=since, until=until, buckets=buckets)
