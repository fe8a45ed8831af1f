"""GET /robots and /robots/{robot_id}: each robot's latest state, read from the registry in one indexed scan."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from app.auth.visibility import visible_states
from app.model.errors import ErrorKind, UnknownRobot
from app.model.payloads import RobotPage, RobotState
from app.model.principal import Scope
from app.web.deps import LatestDep, PrincipalDep, SettingsDep
from app.web.guard import SCOPE_OPT
from app.web.pages import BY_ROBOT_STATE, list_page
from app.web.params import BatteryBelow, Cursor, Limit, RobotIdPath, StaleAfter, StatusFilter, stale_after_s
from app.web.paths import robot_id_from_path
from app.web.problems import AUTH_ERRORS, problem_responses


class RobotsController(Controller):
    path = "/robots"
    tags = ["fleet state"]  # noqa: RUF012 - Litestar reads this class attribute
    opt = {SCOPE_OPT: Scope.READ}  # noqa: RUF012

    @get(
        "/",
        operation_id="listRobots",
        responses=problem_responses(ErrorKind.BAD_PARAMETER, ErrorKind.BAD_CURSOR, *AUTH_ERRORS),
        summary="Every robot with its latest reading, by robot_id, in pages",
        description=(
            "A late reading (older than the robot's newest) never replaces the latest state; a reading stamped "
            "in the future is ranked by when the server stored it."
        ),
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
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> RobotPage:
        states = await latest.fetch_states(
            stale_after_s=stale_after_s(stale_after, settings),
            status=status,
            battery_below=battery_below,
            online=online,
        )
        return RobotPage(*list_page(BY_ROBOT_STATE, visible_states(principal, states), limit, cursor, settings))

    @get(
        "/{robot_id:str}",
        operation_id="getRobot",
        summary="One robot's latest state",
        responses=problem_responses(ErrorKind.UNKNOWN_ROBOT, ErrorKind.BAD_PARAMETER, *AUTH_ERRORS),
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
        stale_s = stale_after_s(stale_after, settings)
        states = visible_states(principal, await latest.fetch_states(stale_after_s=stale_s, robot_id=robot_id))
        if not states:
            raise UnknownRobot(robot_id)
        return states[0]
