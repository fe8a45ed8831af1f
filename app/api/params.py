"""Query and path parameters shared by the read routes (with the examples /docs shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar.openapi.spec import Example
from litestar.params import Parameter, PathParameter

from app.ingest.reading import Status


def ex(value: object) -> list[Example]:
    """An example for /docs, where Swagger UI pre-fills it."""
    return [Example(value=value)]


RobotIdPath = Annotated[
    str,
    PathParameter(
        description="The robot's id; percent-encode a '/' in it as %2F (`fleet%2Fa%2F7` for `fleet/a/7`).",
        examples=ex("R2-D2"),
    ),
]
MAX_STALE_AFTER_S = 366 * 86_400  # a year: beyond it "offline" means nothing, and far beyond, dates overflow
StaleAfter = Annotated[
    int | None,
    Parameter(
        ge=1,
        le=MAX_STALE_AFTER_S,
        description="Seconds without a reading after which a robot counts as offline.",
        examples=ex(300),
    ),
]
Since = Annotated[
    datetime | None, Parameter(description="Inclusive lower bound (RFC 3339).", examples=ex("2026-11-27T00:00:00Z"))
]
Until = Annotated[
    datetime | None, Parameter(description="Exclusive upper bound (RFC 3339).", examples=ex("2026-11-28T00:00:00Z"))
]
Zone = Annotated[str, Parameter(description="IANA time zone, e.g. Europe/Paris.", examples=ex("Europe/Paris"))]
Limit = Annotated[int | None, Parameter(ge=1, description="Page size; capped by the server.", examples=ex(100))]
BucketWidth = Annotated[str | None, Parameter(description="Bucket width: 30s, 1m, 5m, 1h, 1d ...", examples=ex("1m"))]
StatusFilter = Annotated[
    Status | None, Parameter(description="Only robots whose latest status is this.", examples=ex("charging"))
]
BatteryBelow = Annotated[
    float | None,
    Parameter(ge=0, le=100, description="Only robots whose latest battery_level is below.", examples=ex(20)),
]
