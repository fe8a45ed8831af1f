"""RFC 9457 problem details: the one shape every error response of this API takes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.plugins.problem_details import ProblemDetailsException

from app.schemas import FieldError, Problem

PROBLEM_BASE = "https://fleet-telemetry.dev/problems/"


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> ProblemDetailsException:
    extra: dict[str, Any] = {}
    if errors:
        extra["errors"] = msgspec.to_builtins(errors)
    return ProblemDetailsException(
        status_code=status,
        type_=PROBLEM_BASE + slug,
        title=title,
        detail=detail,
        extra=extra,
        headers=headers,
    )


def from_http_exception(exc: HTTPException) -> ProblemDetailsException:
    """Litestar's own errors (bad query parameter, unknown route, 413) in the same problem shape."""
    extra: dict[str, Any] = {}
    if isinstance(exc.extra, list) and exc.extra:
        extra["errors"] = [
            {"field": str(item.get("key", "")), "message": str(item.get("message", ""))}
            if isinstance(item, dict)
            else {"field": "", "message": str(item)}
            for item in exc.extra
        ]
    return ProblemDetailsException(
        status_code=exc.status_code,
        type_="about:blank",
        title=_STATUS_TITLES.get(exc.status_code, "Error"),
        detail=exc.detail,
        extra=extra,
        headers=exc.headers,
    )


_STATUS_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def from_out_of_range(exc: Exception) -> ProblemDetailsException:
    """A date or number so extreme that arithmetic on it overflows, here or in PostgreSQL: the input's fault."""
    return ProblemDetailsException(
        status_code=400,
        type_=PROBLEM_BASE + "out-of-range",
        title="Value out of range",
        detail=f"a parameter is outside the range this API can compute with: {exc}",
    )


_RESPONSE_MEANINGS = {
    400: "Malformed request: bad JSON, query parameter or cursor",
    404: "Unknown robot",
    413: "Too many readings or bytes",
    422: "Invalid readings; each bad one is listed with its index and field",
    503: "Storage unavailable; retry after Retry-After seconds",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The error responses a route can give, for /docs."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            generate_examples=False,
            description=_RESPONSE_MEANINGS[status],
            media_type="application/problem+json",
        )
        for status in statuses
    }


def from_timeout(exc: TimeoutError) -> ProblemDetailsException:
    """A statement that ran past FLEET_QUERY_TIMEOUT_MS: the server's limit, not the client's mistake."""
    return ProblemDetailsException(
        status_code=503,
        type_=PROBLEM_BASE + "query-timeout",
        title="Query timed out",
        detail="the database did not answer in time; narrow the range or retry later",
        headers={"Retry-After": "5"},
    )


def unknown_robot(robot_id: str) -> ProblemDetailsException:
    return problem(404, "unknown-robot", "Unknown robot", f"no readings were ever stored for {robot_id!r}")
