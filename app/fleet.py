"""GET /fleet/*: the fleet questions of the TSBS IoT use case, answered for the whole fleet at once."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import Parameter

from app import queries
from app.buckets import BadBucketRequest, parse_zone
from app.params import StaleAfter, Zone, aware, ex
from app.problems import problem, problem_responses
from app.robots import fetch_robot_states
from app.schemas import DailyActivity, RobotDistance, RobotState, StationaryRobot
from app.state import get_services

MAX_DISTANCE_RANGE = timedelta(days=31)


class FleetController(Controller):
    path = "/fleet"
    tags = ["fleet questions"]  # noqa: RUF012 - Litestar reads this class attribute

    @get(
        "/low-battery",
        summary="Robots whose latest battery_level is below a threshold",
        responses=problem_responses(400),
    )
    async def low_battery(
        self,
        request: Request[Any, Any, Any],
        below: Annotated[float, Parameter(ge=0, le=100, description="Percent.", examples=ex(20))] = 20.0,
        stale_after: StaleAfter = None,
    ) -> list[RobotState]:
        services = get_services(request)
        stale_s = stale_after or services.settings.stale_after_s
        return await fetch_robot_states(services, stale_after_s=stale_s, battery_below=below)

    @get("/offline", summary="Robots with no reading for stale_after seconds", responses=problem_responses(400))
    async def offline(self, request: Request[Any, Any, Any], stale_after: StaleAfter = None) -> list[RobotState]:
        services = get_services(request)
        stale_s = stale_after or services.settings.stale_after_s
        return await fetch_robot_states(services, stale_after_s=stale_s, online=False)

    @get(
        "/stationary",
        responses=problem_responses(400),
        summary="Online robots that moved less than within_m metres in the last window_min minutes",
        description="Movement is the path length: the sum of haversine distances between successive readings.",
    )
    async def stationary(
        self,
        request: Request[Any, Any, Any],
        within_m: Annotated[float, Parameter(ge=0, description="Metres.", examples=ex(5))] = 5.0,
        window_min: Annotated[int, Parameter(ge=1, le=1440, description="Minutes.", examples=ex(10))] = 10,
        stale_after: StaleAfter = None,
    ) -> list[StationaryRobot]:
        services = get_services(request)
        now = datetime.now(UTC)
        online = {
            state.robot_id: state
            for state in await fetch_robot_states(
                services, stale_after_s=stale_after or services.settings.stale_after_s, online=True
            )
        }
        rows = await services.pool.fetch(queries.SELECT_DISTANCES, now - timedelta(minutes=window_min), now)
        return [
            StationaryRobot(
                robot_id=row["robot_id"],
                metres_moved=round(row["metres"], 2),
                readings=row["readings"],
                last_seen=online[row["robot_id"]].last_seen,
                location=online[row["robot_id"]].location,
            )
            for row in rows
            if row["robot_id"] in online and row["metres"] < within_m
        ]

    @get(
        "/distance",
        summary="Distance each robot travelled over [since, until)",
        responses=problem_responses(400),
    )
    async def distance(
        self,
        request: Request[Any, Any, Any],
        since: Annotated[
            datetime, Parameter(description="Inclusive start (RFC 3339).", examples=ex("2026-11-27T00:00:00Z"))
        ],
        until: Annotated[datetime | None, Parameter(description="Exclusive end; default now.")] = None,
    ) -> list[RobotDistance]:
        services = get_services(request)
        start, end = aware(since), aware(until) if until else datetime.now(UTC)
        if not timedelta(0) < end - start <= MAX_DISTANCE_RANGE:
            raise problem(400, "bad-range", "Bad range", "until must be after since, by at most 31 days")
        rows = await services.pool.fetch(queries.SELECT_DISTANCES, start, end)
        return [RobotDistance(r["robot_id"], r["readings"], round(r["metres"], 2)) for r in rows]

    @get(
        "/daily-activity",
        responses=problem_responses(400),
        summary="Hours each robot spent in each status during one local day",
        description=(
            "A reading's status lasts until the next reading, at most FLEET_MAX_STATUS_GAP_S seconds: a longer "
            "silence counts as no status. Days follow the zone's clock, so DST days last 23 or 25 hours."
        ),
    )
    async def daily_activity(
        self,
        request: Request[Any, Any, Any],
        day: Annotated[date, Parameter(description="The local day, YYYY-MM-DD.", examples=ex("2026-11-27"))],
        tz: Zone = "UTC",
    ) -> list[DailyActivity]:
        services = get_services(request)
        try:
            zone = parse_zone(tz)
        except BadBucketRequest as exc:
            raise problem(400, "bad-zone", "Bad time zone", str(exc)) from None
        start = datetime.combine(day, time(0), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        rows = await services.pool.fetch(queries.SELECT_STATUS_SECONDS, start, end, services.settings.max_status_gap_s)
        hours: dict[str, dict[str, float]] = defaultdict(dict)
        for row in rows:
            hours[row["robot_id"]][row["status"]] = round(float(row["seconds"]) / 3600, 4)
        return [DailyActivity(robot_id=r, day=day.isoformat(), tz=tz, hours=h) for r, h in hours.items()]
