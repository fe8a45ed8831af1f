"""GET /robots and /robots/{robot_id}: each robot's latest state, read from the registry in one indexed scan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import Parameter

from app import queries
from app.params import BatteryBelow, RobotIdPath, StaleAfter, StatusFilter
from app.problems import problem_responses, unknown_robot
from app.schemas import Location, RobotState
from app.state import Services, get_services


async def fetch_robot_states(
    services: Services,
    *,
    stale_after_s: int,
    status: str | None = None,
    battery_below: float | None = None,
    online: bool | None = None,
    robot_id: str | None = None,
) -> list[RobotState]:
    await services.latest.sync()  # so that every reading this process acknowledged is reflected
    cutoff = datetime.now(UTC) - timedelta(seconds=stale_after_s)
    rows = await services.pool.fetch(queries.SELECT_ROBOT_STATES, status, battery_below, cutoff, online, robot_id)
    return [
        RobotState(
            robot_id=row["robot_id"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            online=row["online"],
            location=Location(latitude=row["latitude"], longitude=row["longitude"]),
            battery_level=row["battery_level"],
            battery_voltage=row["battery_voltage"],
            status=row["status"],
            seq=row["seq"],
        )
        for row in rows
    ]


class RobotsController(Controller):
    path = "/robots"
    tags = ["fleet state"]  # noqa: RUF012 - Litestar reads this class attribute

    @get(
        "/",
        responses=problem_responses(400),
        summary="Every robot with its latest reading",
        description="A late reading (older than the robot's newest) never replaces the latest state.",
    )
    async def list_robots(
        self,
        request: Request[Any, Any, Any],
        status: StatusFilter = None,
        battery_below: BatteryBelow = None,
        stale_after: StaleAfter = None,
        online: Annotated[bool | None, Parameter(description="Only online (true) or offline (false) robots.")] = None,
    ) -> list[RobotState]:
        services = get_services(request)
        return await fetch_robot_states(
            services,
            stale_after_s=stale_after or services.settings.stale_after_s,
            status=status,
            battery_below=battery_below,
            online=online,
        )

    @get("/{robot_id:str}", summary="One robot's latest state", responses=problem_responses(400, 404))
    async def get_robot(
        self, request: Request[Any, Any, Any], robot_id: RobotIdPath, stale_after: StaleAfter = None
    ) -> RobotState:
        services = get_services(request)
        states = await fetch_robot_states(
            services, stale_after_s=stale_after or services.settings.stale_after_s, robot_id=robot_id
        )
        if not states:
            raise unknown_robot(robot_id)
        return states[0]
