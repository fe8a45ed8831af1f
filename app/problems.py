"""RFC 9457 problem details: the one shape every error response of this API takes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from litestar.exceptions import HTTPException
from litestar.plugins.problem_details import ProblemDetailsException

from app.schemas import FieldError

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
