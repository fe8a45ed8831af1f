"""Query and path parameters shared by the read routes (with the examples /docs shows)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.enums import ParamType
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import Example
from litestar.openapi.spec import Parameter as OpenAPIParameter
from litestar.params import Parameter, PathParameter

from app.model.errors import BadParameter
from app.model.reading import Status
from app.platform.settings import Settings
from app.platform.timeranges import DURATION_PATTERN, MAX_STALE_AFTER, ZONE_PATTERN, parse_duration

_QUERY_NAMES_STATE = "query_names"  # operation id -> the query parameters it takes, built once per app


def ex(value: object) -> list[Example]:
    """An example for /docs, where Swagger UI pre-fills it: only for required parameters (on an optional filter it
    narrows what "Try it out" answers, tests/api/test_problems.py)."""
    return [Example(value=value)]


RobotIdPath = Annotated[
    str,
    PathParameter(
        description="The robot's id; percent-encode a '/' in it as %2F (`fleet%2Fa%2F7` for `fleet/a/7`).",
        examples=ex("R2-D2"),
        schema_extra={"format": "robot-id"},  # the rule is in the Reading schema's robot_id
    ),
]
# Durations share one syntax everywhere: 30s, 5m, 1h, 1d, or bare whole seconds.
DURATION_SCHEMA = {"pattern": DURATION_PATTERN}
StaleAfter = Annotated[
    str | None,
    Parameter(
        description=(
            "How long without a reading (by the server's clock) before a robot counts as offline: 30s, 5m, 1h, "
            "1d, or whole seconds. Default: the server's FLEET_STALE_AFTER_S."
        ),
        schema_extra=DURATION_SCHEMA,
    ),
]
# Times are RFC 3339 strings; a time without an offset is UTC. Epoch numbers are refused.
TIME_SCHEMA = {"format": "date-time"}
Since = Annotated[
    str | None,
    Parameter(
        description="Inclusive lower bound, RFC 3339 (UTC when no offset).",
        schema_extra=TIME_SCHEMA,
    ),
]
Until = Annotated[
    str | None,
    Parameter(
        description="Exclusive upper bound, RFC 3339 (UTC when no offset); default now.",
        schema_extra=TIME_SCHEMA,
    ),
]
Zone = Annotated[
    str,
    Parameter(
        description="IANA time zone, e.g. Europe/Paris.",
        # The shape of an IANA name. Not the list itself: as an enum, names like Etc/GMT+0 and Etc/GMT-0 collide in
        # client generators (openapi-python-client refuses the document).
        schema_extra={"pattern": ZONE_PATTERN},
    ),
]
Limit = Annotated[
    int | None,
    Parameter(ge=1, description="Page size. Above the server's maximum is a 400 that names it."),
]
Cursor = Annotated[str | None, Parameter(min_length=1, description="The `next_cursor` of the previous page.")]
BucketWidth = Annotated[
    str | None,
    Parameter(
        description="Bucket width in the duration syntax: 30s, 1m, 5m, 1h, 1d, or whole seconds.",
        schema_extra=DURATION_SCHEMA,
    ),
]
StatusFilter = Annotated[
    Status | None, Parameter(description="Only robots whose latest status is this, e.g. charging.")
]
BatteryBelow = Annotated[
    float | None,
    Parameter(
        ge=0,
        le=100,
        description="Only robots whose latest battery_level is below, e.g. 20.",
        schema_extra={"minimum": 0.0},  # Litestar drops a falsy ge from an optional parameter's schema
    ),
]


def stale_after_s(stale_after: str | None, settings: Settings) -> int:
    """The ``stale_after`` parameter in seconds, or the server's default."""
    if stale_after is None:
        return settings.query.stale_after_s
    return int(parse_duration(stale_after, "stale_after", MAX_STALE_AFTER).total_seconds())


async def refuse_unknown_parameters(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A query parameter the operation does not take (a misspelt ``sinse=``) is a 400 naming the ones it takes,
    never silently ignored. What each operation takes is read from the OpenAPI document, the contract."""
    if not connection.scope["query_string"]:
        return  # most requests: nothing to check
    known = _query_names(connection.app).get(str(getattr(handler, "operation_id", "")))
    if known is None:
        return  # not in the document: the console and /docs pages
    unknown = sorted(set(connection.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise BadParameter(f"unknown query parameter {unknown[0][:64]!r}; this operation takes: {takes}")


def _query_names(app: Litestar) -> dict[str, frozenset[str]]:
    names: dict[str, frozenset[str]] | None = app.state.get(_QUERY_NAMES_STATE)
    if names is None:
        names = {}
        for path_item in (app.openapi_schema.paths or {}).values():
            for method in ("get", "put", "post", "delete", "patch"):
                operation = getattr(path_item, method, None)
                if operation is not None and operation.operation_id:
                    names[operation.operation_id] = frozenset(
                        p.name
                        for p in operation.parameters or ()
                        if isinstance(p, OpenAPIParameter) and p.param_in == ParamType.QUERY
                    )
        app.state[_QUERY_NAMES_STATE] = names
    return names
