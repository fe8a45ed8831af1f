"""GET /telemetry/{robot_id}/export.csv: a range streamed as CSV by PostgreSQL's COPY, never held in memory.

An export holds one of FLEET_EXPORTS_TOTAL slots from its first byte to its client's last read, and is dropped if
the client stops reading, so exports nobody reads cannot pile up in memory or on disk.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from tempfile import SpooledTemporaryFile
from typing import Any

from litestar import Request, get
from litestar.response import Stream

from app.auth.visibility import resolve_robot
from app.model.errors import ErrorKind
from app.model.principal import Scope
from app.platform.timeranges import MAX_TIME, MIN_TIME, parse_range
from app.telemetry import history as telemetry
from app.web.admission import CONNECTION_CLOSER
from app.web.deps import LimitsDep, PoolDep, PrincipalDep, SettingsDep
from app.web.guard import SCOPE_OPT
from app.web.params import RobotIdPath, Since, Until
from app.web.paths import robot_id_from_path
from app.web.problems import AUTH_ERRORS, problem_responses

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
    request: Request[Any, Any, Any],
    pool: PoolDep,
    settings: SettingsDep,
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
    caps = settings.limits
    limits.exports.acquire(principal.credential_id)
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            limits.exports.release(principal.credential_id)

    try:
        with limits.heavy_reads.hold(principal.credential_id):
            spool = await telemetry.spool_csv(
                pool, robot_id, robot_key, start or MIN_TIME, end or MAX_TIME, caps.max_export_bytes
            )
    except BaseException:
        release()
        raise
    close = CONNECTION_CLOSER.get()
    return Stream(
        _sent_within(spool, caps.export_stall_timeout_s, close, release),
        media_type="text/csv",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


async def _sent_within(
    spool: SpooledTemporaryFile[bytes],
    stall_s: float,
    close: Callable[[], None] | None,
    release: Callable[[], None],
) -> AsyncIterator[bytes]:
    """The spool's chunks; the connection is closed if one is not taken by the client within ``stall_s`` (the
    server's send waits while the client reads nothing), and the slot is released however the export ends."""
    loop = asyncio.get_running_loop()
    try:
        async for chunk in telemetry.read_spool(spool):
            stall = loop.call_later(stall_s, close) if close is not None else None
            try:
                yield chunk
            finally:
                if stall is not None:
                    stall.cancel()
    finally:
        release()
