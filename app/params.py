"""Query parameters shared by the read routes, and their normalisation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar.params import Parameter, PathParameter

RobotIdPath = Annotated[str, PathParameter(description="The robot's id.")]
StaleAfter = Annotated[
    int | None,
    Parameter(ge=1, description="Seconds without a reading after which a robot counts as offline."),
]
Since = Annotated[datetime | None, Parameter(description="Inclusive lower bound (RFC 3339).")]
Until = Annotated[datetime | None, Parameter(description="Exclusive upper bound (RFC 3339).")]
Zone = Annotated[str, Parameter(description="IANA time zone, e.g. Europe/Paris.")]


def aware(value: datetime) -> datetime:
    """Query times without a zone are taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
