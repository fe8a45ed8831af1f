"""Which bucket queries are summed from whole minutes of the rollup, and which from the readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app.rollups.periods import MINUTE, PERIOD, ceil_to, floor_to
from app.telemetry.store import _rolls_up

T = datetime(2026, 11, 28, 10, 0, 30, tzinfo=UTC)


def test_only_whole_minute_buckets_of_an_hour_or_more_in_whole_minute_zones() -> None:
    day = (T - timedelta(days=1), T)
    assert _rolls_up(timedelta(hours=1), ZoneInfo("UTC"), *day)
    assert _rolls_up(timedelta(days=1), ZoneInfo("Asia/Kolkata"), *day)  # +05:30
    assert not _rolls_up(timedelta(minutes=30), ZoneInfo("UTC"), *day)  # narrower: little to gain
    assert not _rolls_up(timedelta(seconds=3601), ZoneInfo("UTC"), *day)  # not whole minutes
    # Amsterdam's local mean time was +00:19:32 until 1937: bucket edges fell inside minutes.
    old = (datetime(1930, 1, 1, tzinfo=UTC), datetime(1930, 1, 2, tzinfo=UTC))
    assert not _rolls_up(timedelta(hours=1), ZoneInfo("Europe/Amsterdam"), *old)


def test_the_whole_minutes_and_quarter_hours_inside_a_range() -> None:
    assert ceil_to(T, MINUTE) == T.replace(second=0) + timedelta(minutes=1)
    assert floor_to(T, MINUTE) == T.replace(second=0)
    aligned = T.replace(second=0)
    assert ceil_to(aligned, MINUTE) == aligned == floor_to(aligned, MINUTE)
    assert floor_to(T.astimezone(ZoneInfo("Asia/Kolkata")), MINUTE) == T.replace(second=0)
    late = T + timedelta(minutes=20)
    assert (floor_to(late, PERIOD), ceil_to(late, PERIOD)) == (
        T.replace(minute=15, second=0),
        T.replace(minute=30, second=0),
    )
    # A local midnight of a zone a whole number of quarter hours from UTC (Nepal: +05:45) is a period's start.
    midnight = datetime(2026, 11, 28, tzinfo=ZoneInfo("Asia/Kathmandu"))
    assert floor_to(midnight, PERIOD) == midnight == ceil_to(midnight, PERIOD)
