"""GET /telemetry/{robot_id}/export.csv: a range streamed as CSV by PostgreSQL's COPY, never held in memory."""

from __future__ import annotations

import re

from litestar import get
from litestar.response import Stream

from app.api.auth import SCOPE_OPT
from app.api.deps import LimitsDep, PoolDep, PrincipalDep
from app.api.params import RobotIdPath, Since, Until
from app.api.paths import robot_id_from_path
from app.api.problems import AUTH_ERRORS, problem_responses
from app.auth.access import resolve_robot
from app.auth.principals import Scope
from app.db import telemetry
from app.errors import ErrorKind
from app.timeranges import MAX_TIME, MIN_TIME, parse_range

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


@get(
    "/telemetry/{robot_id:str}/export.csv",
    operation_id="exportRobotCsv",
    responses=problem_responses(
        ErrorKind.UNKNOWN_ROBOT,
        ErrorKind.BAD_PARAMETER,
        ErrorKind.BAD_RANGE,
        ErrorKind.RATE_LIMITED,
        ErrorKind.QUERY_TIMEOUT,
        *AUTH_ERRORS,
    ),
    opt={SCOPE_OPT: Scope.EXPORT},
    tags=["live and export"],
    summary="One robot's readings in [since, until) as CSV, oldest first",
    media_type="text/csv",
)
async def export_csv(
    pool: PoolDep,
    principal: PrincipalDep,
    limits: LimitsDep,
    robot_id: RobotIdPath,
    since: Since = None,
    until: Until = None,
) -> Stream:
    robot_id = robot_id_from_path(robot_id)
    robot_key = await resolve_robot(pool, principal, robot_id)
    start, end = parse_range(since, until)
    filename = _UNSAFE_FILENAME.sub("_", robot_id) + ".csv"
    with limits.heavy_reads.hold(principal.credential_id):
        spool = await telemetry.spool_csv(pool, robot_id, robot_key, start or MIN_TIME, end or MAX_TIME)
    return Stream(
        telemetry.read_spool(spool),
        media_type="text/csv",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
