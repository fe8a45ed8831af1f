"""GET /fleet/*: the fleet questions (``app.fleet``) as routes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from app import fleet
from app.api.auth import SCOPE_OPT
from app.api.deps import LatestDep, LimitsDep, PoolDep, PrincipalDep, SettingsDep
from app.api.params import StaleAfter, Zone, ex
from app.api.problems import AUTH_ERRORS, problem_responses
from app.auth.access import keep_visible, visible_states
from app.auth.principals import Scope
from app.errors import ErrorKind
from app.schemas import DailyActivity, RobotDistance, RobotState, StationaryRobot


class FleetController(Controller):
    path = "/fleet"
    tags = ["fleet questions"]  # noqa: RUF012 - Litestar reads this class attribute
    opt = {SCOPE_OPT: Scope.READ}  # noqa: RUF012

    @get(
        "/low-battery",
        operation_id="listLowBatteryRobots",
        summary="Robots whose latest battery_level is below a threshold, lowest first",
        responses=problem_responses(*AUTH_ERRORS),
    )
    async def low_battery(
        self,
        latest: LatestDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        below: Annotated[float, Parameter(ge=0, le=100, description="Percent.", examples=ex(20))] = 20.0,
        include_offline: Annotated[
            bool, Parameter(description="Include robots not heard from for stale_after (their last battery).")
        ] = True,
        stale_after: StaleAfter = None,
    ) -> list[RobotState]:
        stale_s = stale_after or settings.query.stale_after_s
        states = await latest.fetch_states(
            stale_after_s=stale_s, battery_below=below, online=None if include_offline else True
        )
        return sorted(visible_states(principal, states), key=lambda state: (state.battery_level, state.robot_id))

    @get(
        "/offline",
        operation_id="listOfflineRobots",
        summary="Robots the server has not heard from for stale_after seconds",
        responses=problem_responses(*AUTH_ERRORS),
    )
    async def offline(
        self, latest: LatestDep, settings: SettingsDep, principal: PrincipalDep, stale_after: StaleAfter = None
    ) -> list[RobotState]:
        stale_s = stale_after or settings.query.stale_after_s
        return visible_states(principal, await latest.fetch_states(stale_after_s=stale_s, online=False))

    @get(
        "/stationary",
        operation_id="listStationaryRobots",
        responses=problem_responses(ErrorKind.RATE_LIMITED, *AUTH_ERRORS),
        summary="Online robots that moved less than within_m metres in the last window_min minutes",
        description="Movement is the path length: the sum of haversine distances between successive readings.",
    )
    async def stationary(
        self,
        latest: LatestDep,
        pool: PoolDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        limits: LimitsDep,
        within_m: Annotated[float, Parameter(ge=0, description="Metres.", examples=ex(5))] = 5.0,
        window_min: Annotated[int, Parameter(ge=1, le=1440, description="Minutes.", examples=ex(10))] = 10,
        stale_after: StaleAfter = None,
    ) -> list[StationaryRobot]:
        with limits.heavy_reads.hold(principal.credential_id):
            found = await fleet.find_stationary(
                latest,
                pool,
                within_m=within_m,
                window_min=window_min,
                stale_after_s=stale_after or settings.query.stale_after_s,
            )
        return await keep_visible(pool, principal, found, lambda robot: robot.robot_id)

    @get(
        "/distance",
        operation_id="measureDistances",
        summary="Distance each robot travelled over [since, until)",
        responses=problem_responses(ErrorKind.BAD_RANGE, ErrorKind.RATE_LIMITED, *AUTH_ERRORS),
    )
    async def distance(
        self,
        pool: PoolDep,
        principal: PrincipalDep,
        limits: LimitsDep,
        since: Annotated[
            datetime, Parameter(description="Inclusive start (RFC 3339).", examples=ex("2026-11-27T00:00:00Z"))
        ],
        until: Annotated[datetime | None, Parameter(description="Exclusive end; default now.")] = None,
    ) -> list[RobotDistance]:
        with limits.heavy_reads.hold(principal.credential_id):
            distances = await fleet.measure_distances(pool, since, until)
        return await keep_visible(pool, principal, distances, lambda robot: robot.robot_id)

    @get(
        "/daily-activity",
        operation_id="sumDailyActivity",
        responses=problem_responses(ErrorKind.BAD_ZONE, ErrorKind.RATE_LIMITED, *AUTH_ERRORS),
        summary="Hours each robot spent in each status during one local day",
        description=(
            "A reading's status lasts until the next reading, at most FLEET_MAX_STATUS_GAP_S seconds: a longer "
            "silence counts as no status. Days follow the zone's clock, so DST days last 23 or 25 hours."
        ),
    )
    async def daily_activity(
        self,
        pool: PoolDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        limits: LimitsDep,
        day: Annotated[date, Parameter(description="The local day, YYYY-MM-DD.", examples=ex("2026-11-27"))],
        tz: Zone = "UTC",
    ) -> list[DailyActivity]:
        with limits.heavy_reads.hold(principal.credential_id):
            activity = await fleet.sum_daily_activity(pool, day, tz, settings.query.max_status_gap_s)
        return await keep_visible(pool, principal, activity, lambda robot: robot.robot_id)
