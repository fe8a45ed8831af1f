"""Routes under /telemetry: ingest a reading or a batch, and page through one robot's history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import Parameter

from app.buckets import BadBucketRequest, fetch_buckets
from app.history import MIN_TIME, BadCursor, fetch_history_page, fetch_robot_key
from app.ingest import FlushError, Row
from app.openapi import TelemetryBodyOperation
from app.params import BucketWidth, Limit, RobotIdPath, Since, Until, Zone, aware
from app.payloads import PayloadError, Window, parse_readings
from app.problems import problem, problem_responses, unknown_robot
from app.schemas import BucketSeries, HistoryPage, IngestResult
from app.state import get_services

DEFAULT_BUCKET_RANGE = timedelta(days=1)


class TelemetryController(Controller):
    path = "/telemetry"
    tags = ["telemetry"]  # noqa: RUF012 - Litestar reads this class attribute

    @post(
        ["/", ""],
        responses=problem_responses(400, 413, 422, 503),
        status_code=200,
        operation_class=TelemetryBodyOperation,
        summary="Store one reading or a batch",
        description=(
            "All-or-nothing: a bad reading rejects the whole request (422, naming each bad index and field) "
            "and nothing is stored. The 200 is sent only after the rows are committed. Re-sent readings "
            "(same robot_id and timestamp) are stored once and counted as duplicates."
        ),
    )
    async def ingest(self, request: Request[Any, Any, Any]) -> IngestResult:
        services = get_services(request)
        settings = services.settings
        body = await request.body()
        try:
            window = Window.around(
                datetime.now(UTC), timedelta(seconds=settings.max_future_s), timedelta(seconds=settings.max_past_s)
            )
            readings, times = parse_readings(body, window)
            if len(readings) > settings.max_readings_per_request:
                raise problem(
                    413,
                    "too-many-readings",
                    "Too many readings",
                    f"a request may carry at most {settings.max_readings_per_request} readings, "
                    f"this one has {len(readings)}",
                )
        except PayloadError as exc:
            if exc.malformed:
                raise problem(400, "malformed-json", "Malformed JSON", str(exc), errors=exc.errors) from None
            raise problem(
                422,
                "invalid-reading",
                "Invalid reading",
                f"{len(exc.errors)} problem(s) found; nothing from this request was stored",
                errors=exc.errors,
            ) from None
        if not readings:
            return IngestResult(accepted=0, duplicates=0)
        rows: list[Row] = [
            (
                r.robot_id,
                ts,
                r.location.latitude,
                r.location.longitude,
                r.battery_level,
                r.battery_voltage,
                r.status,
                r.seq,
            )
            for r, ts in zip(readings, times, strict=True)
        ]
        try:
            return await services.ingestor.submit(rows)
        except FlushError as exc:
            raise problem(
                503,
                "storage-unavailable",
                "Storage unavailable",
                str(exc),
                headers={"Retry-After": str(settings.retry_after_s)},
            ) from None

    @get(
        "/{robot_id:str}",
        responses=problem_responses(400, 404),
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
        request: Request[Any, Any, Any],
        robot_id: RobotIdPath,
        since: Since = None,
        until: Until = None,
        limit: Limit = None,
        cursor: Annotated[str | None, Parameter(description="next_cursor of the previous page.")] = None,
        bucket: BucketWidth = None,
        tz: Zone = "UTC",
    ) -> HistoryPage | BucketSeries:
        services = get_services(request)
        settings = services.settings
        robot_key = await fetch_robot_key(services.pool, robot_id)
        if robot_key is None:
            raise unknown_robot(robot_id)
        start, end = aware(since) if since else None, aware(until) if until else None
        if bucket is not None:
            end = end or datetime.now(UTC)
            try:
                if start is None:
                    start = end - DEFAULT_BUCKET_RANGE if end > MIN_TIME + DEFAULT_BUCKET_RANGE else MIN_TIME
                return await fetch_buckets(
                    services.pool, robot_id, robot_key, bucket, tz, start, end, settings.max_buckets
                )
            except BadBucketRequest as exc:
                raise problem(400, "bad-bucket-request", "Bad bucket request", str(exc)) from None
        page_size = min(limit or settings.history_default_limit, settings.history_max_limit)
        try:
            return await fetch_history_page(services.pool, robot_id, robot_key, start, end, page_size, cursor)
        except BadCursor as exc:
            raise problem(400, "bad-cursor", "Bad cursor", str(exc)) from None
