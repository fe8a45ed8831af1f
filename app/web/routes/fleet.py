"""GET /fleet/*: the fleet questions (``app.fleet``) as routes, each a paged list of robots."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from app.auth.visibility import keep_visible, visible_states
from app.fleet import questions as fleet
from app.model.errors import BadParameter, ErrorKind
from app.model.payloads import ActivityPage, DistancePage, RobotPage, StationaryPage
from app.model.principal import Scope
from app.platform.timeranges import MAX_DISTANCE_RANGE, MAX_STATIONARY_WINDOW, parse_duration, parse_range
from app.web.deps import LatestDep, LimitsDep, PoolDep, PrincipalDep, SettingsDep
from app.web.guard import SCOPE_OPT
from app.web.pages import BY_ACTIVITY, BY_BATTERY, BY_DISTANCE, BY_ROBOT_STATE, BY_STATIONARY, list_page
from app.web.params import DURATION_SCHEMA, TIME_SCHEMA, Cursor, Limit, StaleAfter, Zone, ex, stale_after_s
from app.web.problems import AUTH_ERRORS, problem_responses

PAGED = (ErrorKind.BAD_PARAMETER, ErrorKind.BAD_CURSOR, *AUTH_ERRORS)


class FleetController(Controller):
    path = "/fleet"
    tags = ["fleet questions"]  # noqa: RUF012 - Litestar reads this class attribute
    opt = {SCOPE_OPT: Scope.READ}  # noqa: RUF012

    @get(
        "/low-battery",
        operation_id="listLowBatteryRobots",
        summary="Robots whose latest battery_level is below a threshold, lowest first",
        responses=problem_responses(*PAGED),
    )
    async def low_battery(
        self,
        latest: LatestDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        below: Annotated[float, Parameter(ge=0, le=100, description="Percent.")] = 20.0,
        include_offline: Annotated[
            bool, Parameter(description="Include robots not heard from for stale_after (their last battery).")
        ] = True,
        stale_after: StaleAfter = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> RobotPage:
        states = await latest.fetch_states(
            stale_after_s=stale_after_s(stale_after, settings),
            battery_below=below,
            online=None if include_offline else True,
        )
        return RobotPage(*list_page(BY_BATTERY, visible_states(principal, states), limit, cursor, settings))

    @get(
        "/offline",
        operation_id="listOfflineRobots",
        summary="Robots the server has not received a reading from for stale_after",
        responses=problem_responses(*PAGED),
    )
    async def offline(
        self,
        latest: LatestDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        stale_after: StaleAfter = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> RobotPage:
        states = await latest.fetch_states(stale_after_s=stale_after_s(stale_after, settings), online=False)
        return RobotPage(*list_page(BY_ROBOT_STATE, visible_states(principal, states), limit, cursor, settings))

    @get(
        "/stationary",
        operation_id="listStationaryRobots",
        responses=problem_responses(ErrorKind.RATE_LIMITED, *PAGED),
        summary="Online robots that moved less than within_m metres during the last window",
        description="Movement is the path length: the sum of haversine distances between successive readings.",
    )
    async def stationary(
        self,
        latest: LatestDep,
        pool: PoolDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        limits: LimitsDep,
        within_m: Annotated[float, Parameter(ge=0, description="Metres.")] = 5.0,
        window: Annotated[
            str | None,
            Parameter(
                description="How far back to look: 30s, 5m, 1h, 1d (at most) or whole seconds. Default 10m.",
                schema_extra=DURATION_SCHEMA,
            ),
        ] = None,
        window_min: Annotated[
            int | None,
            Parameter(ge=1, le=1440, description="Deprecated: minutes; use `window`. Not with `window`."),
        ] = None,
        stale_after: StaleAfter = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> StationaryPage:
        if window is not None and window_min is not None:
            raise BadParameter("give window or window_min, not both")
        span = (
            parse_duration(window, "window", MAX_STATIONARY_WINDOW)
            if window is not None
            else timedelta(minutes=window_min or 10)
        )
        with limits.heavy_reads.hold(principal.credential_id):
            found = await fleet.find_stationary(
                latest, pool, within_m=within_m, window=span, stale_after_s=stale_after_s(stale_after, settings)
            )
        visible = await keep_visible(pool, principal, found, lambda robot: robot.robot_id)
        return StationaryPage(*list_page(BY_STATIONARY, visible, limit, cursor, settings))

    @get(
        "/distance",
        operation_id="measureDistances",
        summary="Distance each robot travelled over [since, until)",
        responses=problem_responses(ErrorKind.BAD_RANGE, ErrorKind.RATE_LIMITED, *PAGED),
    )
    async def distance(
        self,
        pool: PoolDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        limits: LimitsDep,
        since: Annotated[
            str,
            Parameter(
                description="Inclusive start, RFC 3339 (UTC when no offset).",
                schema_extra=TIME_SCHEMA,
                examples=ex("2026-11-27T00:00:00Z"),
            ),
        ],
        until: Annotated[
            str | None,
            Parameter(
                description="Exclusive end, RFC 3339 (UTC when no offset); default now. At most 31 days after since.",
                schema_extra=TIME_SCHEMA,
            ),
        ] = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> DistancePage:
        start, end = parse_range(since, until, MAX_DISTANCE_RANGE)
        assert start is not None  # since is required
        with limits.heavy_reads.hold(principal.credential_id):
            distances = await fleet.measure_distances(pool, start, end)
        visible = await keep_visible(pool, principal, distances, lambda robot: robot.robot_id)
        return DistancePage(*list_page(BY_DISTANCE, visible, limit, cursor, settings))

    @get(
        "/daily-activity",
        operation_id="sumDailyActivity",
        responses=problem_responses(ErrorKind.BAD_ZONE, ErrorKind.RATE_LIMITED, *PAGED),
        summary="Hours each robot spent in each status during one local day",
        description=(
            "A reading's status lasts until the next reading, at most FLEET_MAX_STATUS_GAP_S seconds: a longer "
            "silence counts as no status, and nothing is counted past now. A status held across midnight is split "
            "between the two days. Days follow the zone's clock, so DST days last 23 or 25 hours."
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
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> ActivityPage:
        with limits.heavy_reads.hold(principal.credential_id):
            activity = await fleet.sum_daily_activity(pool, day, tz, settings.query.max_status_gap_s)
        visible = await keep_visible(pool, principal, activity, lambda robot: robot.robot_id)
        return ActivityPage(*list_page(BY_ACTIVITY, visible, limit, cursor, settings))
