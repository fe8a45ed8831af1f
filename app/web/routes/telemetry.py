"""Routes under /telemetry: ingest a reading or a batch, and page through one robot's history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.openapi import ResponseSpec

from app.auth.visibility import resolve_robot
from app.model.errors import ErrorKind
from app.model.payloads import BucketSeries, HistoryPage, IngestResult
from app.model.principal import Scope
from app.platform.timeranges import MIN_TIME, parse_range, parse_zone
from app.telemetry import history as telemetry
from app.web.deps import PoolDep, PrincipalDep, SettingsDep, services_of
from app.web.guard import SCOPE_OPT, principal_of
from app.web.ingest_endpoint import ingest_readings
from app.web.openapi import TelemetryBodyOperation
from app.web.pages import keyset_page_size
from app.web.params import BucketWidth, Cursor, Limit, RobotIdPath, Since, Until, Zone
from app.web.paths import robot_id_from_path
from app.web.problems import AUTH_ERRORS, problem_responses

DEFAULT_BUCKET_RANGE = timedelta(days=1)


class TelemetryController(Controller):
    path = "/telemetry"
    tags = ["telemetry"]  # noqa: RUF012 - Litestar reads this class attribute

    @post(
        ["/", ""],
        operation_id="ingestReadings",
        responses={
            # The route answers with the plain entry's encoded bytes: its 200 is declared, not inferred.
            200: ResponseSpec(
                IngestResult,
                description="Stored after commit: readings new and duplicate.",
                generate_examples=False,  # polyfactory would import Faker: 58 MB at start-up; examples.py has one
            ),
            **problem_responses(
                ErrorKind.MALFORMED_BODY,
                ErrorKind.TOO_MANY_READINGS,
                ErrorKind.BODY_TOO_LARGE,
                ErrorKind.INVALID_READING,
                ErrorKind.STORAGE_UNAVAILABLE,
                ErrorKind.UNSUPPORTED_MEDIA_TYPE,
                ErrorKind.RATE_LIMITED,
                *AUTH_ERRORS,
            ),
        },
        status_code=200,
        operation_class=TelemetryBodyOperation,
        opt={SCOPE_OPT: Scope.INGEST},
        summary="Store one reading or a batch",
        description=(
            "All-or-nothing: a bad reading rejects the whole request (422, naming each bad index and field) "
            "and nothing is stored. The 200 is sent only after the rows are committed. Re-sent readings "
            "(same robot_id and timestamp) are stored once and counted as duplicates."
        ),
    )
    async def ingest(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        # The plain entry's implementation (app.web.ingest_endpoint), after Litestar's guard admitted the writer.
        answer = await ingest_readings(services_of(request), principal_of(request), request.scope, request.receive)
        return Response(answer, media_type=MediaType.JSON)

    @get(
        "/{robot_id:str}",
        operation_id="getRobotHistory",
        responses=problem_responses(
            ErrorKind.BAD_PARAMETER,
            ErrorKind.BAD_CURSOR,
            ErrorKind.BAD_BUCKET,
            ErrorKind.BAD_RANGE,
            ErrorKind.BAD_ZONE,
            ErrorKind.UNKNOWN_ROBOT,
            *AUTH_ERRORS,
        ),
        opt={SCOPE_OPT: Scope.READ},
        summary="One robot's readings, newest first, or downsampled into time buckets",
        description=(
            "Without `bucket`: raw readings, newest first, in keyset pages (`limit`, `cursor`). With `bucket` "
            "(1m, 5m, 1h, 1d, ...): one row per bucket over [since, until) (default: the last day), with "
            "count, battery statistics, the last location and the share of readings in each status; `tz` "
            "aligns day buckets with local days, DST included."
        ),
    )
    async def history(
        self,
        pool: PoolDep,
        settings: SettingsDep,
        principal: PrincipalDep,
        robot_id: RobotIdPath,
        since: Since = None,
        until: Until = None,
        limit: Limit = None,
        cursor: Cursor = None,
        bucket: BucketWidth = None,
        tz: Zone = "UTC",
    ) -> HistoryPage | BucketSeries:
        robot_id = robot_id_from_path(robot_id)
        parse_zone(tz)  # checked even where only buckets use it: a bad parameter is never silently ignored
        robot_key = await resolve_robot(pool, principal, robot_id)
        start, end = parse_range(since, until)
        query = settings.query
        if bucket is not None:
            end = end or datetime.now(UTC)
            if start is None:
                start = end - DEFAULT_BUCKET_RANGE if end > MIN_TIME + DEFAULT_BUCKET_RANGE else MIN_TIME
            return await telemetry.fetch_buckets(pool, robot_id, robot_key, bucket, tz, start, end, query.max_buckets)
        size = keyset_page_size(limit, settings)
        return await telemetry.fetch_history_page(pool, robot_id, robot_key, start, end, size, cursor)
