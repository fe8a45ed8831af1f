"""The fleet questions of the TSBS IoT use case, answered for the whole fleet at once."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from app.fleet import store as fleet
from app.model.errors import BadRange
from app.model.payloads import DailyActivity, RobotDistance, StationaryRobot
from app.platform.pool import Pool
from app.platform.timeranges import MAX_DISTANCE_RANGE, parse_zone
from app.telemetry.latest import LatestState


async def find_stationary(
    latest: LatestState, pool: Pool, *, within_m: float, window: timedelta, stale_after_s: int
) -> list[StationaryRobot]:
    """Online robots whose path over the last ``window`` is shorter than ``within_m`` metres."""
    now = datetime.now(UTC)
    online = {state.robot_id: state for state in await latest.fetch_states(stale_after_s=stale_after_s, online=True)}
    distances = await fleet.fetch_distances(pool, now - window, now)
    return [
        StationaryRobot(
            robot_id=robot_id,
            metres=metres,
            readings=readings,
            last_seen=online[robot_id].last_seen,
            location=online[robot_id].location,
        )
        for robot_id, readings, metres in distances
        if robot_id in online and metres < within_m
    ]


async def measure_distances(pool: Pool, since: datetime, until: datetime | None) -> list[RobotDistance]:
    start, end = since, until or datetime.now(UTC)
    if not timedelta(0) <= end - start <= MAX_DISTANCE_RANGE:  # equal only for a range clamped to 1970
        raise BadRange("until must be after since, by at most 31 days")
    return [RobotDistance(r, n, m) for r, n, m in await fleet.fetch_distances(pool, start, end)]


async def sum_daily_activity(pool: Pool, day: date, tz: str, max_gap_s: int) -> list[DailyActivity]:
    """Hours each robot spent in each status during one local day of zone ``tz``."""
    zone = parse_zone(tz)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    seconds = await fleet.fetch_status_seconds(pool, start, end, max_gap_s, datetime.now(UTC))
    return [
        DailyActivity(
            robot_id=robot_id,
            day=day.isoformat(),
            tz=tz,
            hours={status: s / 3600 for status, s in per_status.items()},
        )
        for robot_id, per_status in seconds.items()
    ]
