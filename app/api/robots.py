"""GET /robots and /robots/{robot_id}: each robot's latest state, read from the registry in one indexed scan."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from app.api.auth import SCOPE_OPT
from app.api.deps import LatestDep, PrincipalDep, SettingsDep
from app.api.params import BatteryBelow, RobotIdPath, StaleAfter, StatusFilter
from app.api.paths import robot_id_from_path
from app.api.problems import AUTH_ERRORS, problem_responses
from app.auth.access import visible_states
from app.auth.principals import Scope
from app.errors import ErrorKind, UnknownRobot
from app.schemas import RobotState


class RobotsController(Controller):
    path = "/robots"
    tags = ["fleet state"]  # noqa: RUF012 - Litestar reads this class attribute
    opt = {SCOPE_OPT: Scope.READ}  # noqa: RUF012

    @get(
        "/",
        operation_id="listRobots",
        responses=problem_responses(*AUTH_ERRORS),
        summary="Every robot with its latest reading",
        description="A late reading (older than the robot's newest) never replaces the latest state.",
    )
    async def list_robots(
        self,
        latest: LatestDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        status: StatusFilter = None,
        battery_below: BatteryBelow = None,
        stale_after: StaleAfter = None,
        online: Annotated[bool | None, Parameter(description="Only online (true) or offline (false) robots.")] = None,
    ) -> list[RobotState]:
        states = await latest.fetch_states(
            stale_after_s=stale_after or settings.query.stale_after_s,
            status=status,
            battery_below=battery_below,
            online=online,
        )
        return visible_states(principal, states)

    @get(
        "/{robot_id:str}",
        operation_id="getRobot",
        summary="One robot's latest state",
        responses=problem_responses(ErrorKind.UNKNOWN_ROBOT, *AUTH_ERRORS),
    )
    async def get_robot(
        self,
        latest: LatestDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        robot_id: RobotIdPath,
        stale_after: StaleAfter = None,
    ) -> RobotState:
        robot_id = robot_id_from_path(robot_id)
        stale_after_s = stale_after or settings.query.stale_after_s
        states = visible_states(principal, await latest.fetch_states(stale_after_s=stale_after_s, robot_id=robot_id))
        if not states:
            raise UnknownRobot(robot_id)
        return states[0]
