"""The answers the API should give, computed independently from the raw rows, in plain Python: the system suite
compares every derived answer with these, never with the code's own SQL."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

STATUSES = ("idle", "moving", "working", "charging", "error")  # the order ties go by (app.telemetry.store)
EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True, slots=True)
class Raw:
    robot_id: str
    time: datetime
    latitude: float | None
    longitude: float | None
    battery_level: float
    status: str | None
    stored_at: datetime


def by_robot(rows: Iterable[Raw]) -> dict[str, list[Raw]]:
    """Each robot's rows in time order."""
    grouped: dict[str, list[Raw]] = defaultdict(list)
    for row in rows:
        grouped[row.robot_id].append(row)
    return {robot: sorted(found, key=lambda r: r.time) for robot, found in grouped.items()}


def newest(rows: Sequence[Raw]) -> Raw:
    """ "Newer wins": the greatest (min(time, stored_at), time)."""
    return max(rows, key=lambda r: (min(r.time, r.stored_at), r.time))


def buckets(
    rows: Sequence[Raw], width: timedelta, zone: str, since: datetime, until: datetime
) -> dict[datetime, dict[str, Any]]:
    """Non-empty buckets of one robot's rows, cut on the zone's wall clock (zones without DST here)."""
    tz = ZoneInfo(zone)
    found: dict[datetime, list[Raw]] = defaultdict(list)
    for row in rows:
        if since <= row.time < until:
            local = row.time.astimezone(tz).replace(tzinfo=None)
            floor = datetime.min + (local - datetime.min) // width * width
            found[floor.replace(tzinfo=tz)].append(row)
    answer = {}
    for start, members in found.items():
        counts = {s: sum(1 for r in members if r.status == s) for s in STATUSES}
        total = sum(counts.values())
        located = [r for r in members if r.latitude is not None]
        last = max(located, key=lambda r: r.time) if located else None
        levels = [r.battery_level for r in members]
        answer[start] = {
            "readings": len(members),
            "battery_level_min": min(levels),
            "battery_level_max": max(levels),
            "battery_level_avg": sum(levels) / len(levels),
            "last_location": None if last is None else {"latitude": last.latitude, "longitude": last.longitude},
            "status_share": {s: round(n / total, 4) for s, n in counts.items() if n} if total else {},
            "top_status": max(STATUSES, key=counts.__getitem__) if total else None,
        }
    return answer


def status_seconds(
    rows: Sequence[Raw], start: datetime, end: datetime, gap_s: float, now: datetime
) -> dict[str, float]:
    """Seconds per status over [start, end): each reading's status until the next reading, at most gap_s after it,
    never past end or now; the last reading before start (within gap_s) is carried in from start."""
    gap = timedelta(seconds=gap_s)
    inside = [r for r in rows if start <= r.time < end]
    before = [r for r in rows if start - gap <= r.time < start]
    if before:
        inside = [before[-1], *inside]
    seconds: dict[str, float] = {}
    for i, row in enumerate(inside):
        following = inside[i + 1].time if i + 1 < len(inside) else end
        until = min(following, row.time + gap, end, now)
        held = max(0.0, (until - max(row.time, start)).total_seconds())
        if row.status is not None:
            seconds[row.status] = seconds.get(row.status, 0.0) + held
    return seconds


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def distance(rows: Sequence[Raw], since: datetime, until: datetime) -> tuple[int, float]:
    """(readings with a location, metres between successive ones) over [since, until)."""
    points = [(r.latitude, r.longitude) for r in rows if since <= r.time < until and r.latitude is not None]
    metres = 0.0
    for (lat1, lon1), (lat2, lon2) in itertools.pairwise(points):
        assert lat1 is not None and lon1 is not None and lat2 is not None and lon2 is not None
        metres += haversine_m(lat1, lon1, lat2, lon2)
    return len(points), metres
