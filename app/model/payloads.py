"""Every payload the API writes besides the reading itself (``app.model.reading``), as msgspec structs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.model.reading import Location, Status, StoredReading


class IngestResult(msgspec.Struct, gc=False):
    """Sent only after the request's rows are committed."""

    accepted: int
    duplicates: int


class HistoryPage(msgspec.Struct, gc=False):
    robot_id: str
    readings: list[StoredReading]
    next_cursor: Annotated[str | None, Meta(description="Pass as `cursor` for older readings; null at the end.")] = None


class DatabaseJob(msgspec.Struct, gc=False):
    """One of the jobs the database's own scheduler runs for this service: the columnstore policy, the minute
    aggregate's refresh, retention."""

    job_id: int
    name: Annotated[str, Meta(description="What it runs, and on which table: `policy_compression on telemetry`.")]
    scheduled: Annotated[bool, Meta(description="False: paused.")]
    last_run_at: datetime | None
    last_run_status: Annotated[str | None, Meta(description="`Success` or `Failed`; null before its first run.")]
    last_success_at: datetime | None
    runs: int
    failures: int
    next_start: datetime | None


class Storage(msgspec.Struct, gc=False):
    """What the database offers and what the service does with it, found at start-up; ``jobs`` is sampled every
    10 s."""

    timescaledb_license: Annotated[
        str, Meta(description="`timescale`: the community edition (columnstore, continuous aggregates, jobs).")
    ]
    retention: Annotated[str, Meta(description="FLEET_RETENTION: `off`, or how long readings are kept.")]
    compression: Annotated[
        str,
        Meta(
            description="`columnstore, chunks converted after <age>` (the database's policy), with ` (policy "
            "paused)` when it is, or `off`."
        ),
    ]
    jobs: list[DatabaseJob] = msgspec.field(default_factory=list)


class Health(msgspec.Struct, gc=False):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["up", "down"]
    # "off" means any client can read and write everything (FLEET_AUTH=off, for trusted networks only).
    authentication: Literal["on", "off"]
    storage: Storage | None = None


class FieldError(msgspec.Struct, omit_defaults=True, gc=False):
    """One problem in a request body: ``index`` is the position in a batch (absent for a single reading)."""

    field: str
    message: str
    index: int | None = None


class Problem(msgspec.Struct, omit_defaults=True, gc=False):
    """RFC 9457 problem details, the body of every error response (application/problem+json)."""

    status: int
    title: str
    detail: str
    type: str = "about:blank"
    errors: list[FieldError] | None = None


class RobotState(StoredReading, gc=False):
    """A robot's newest reading ("newer wins": ranked by min(timestamp, stored time)), with what the server
    knows of the robot. ``timestamp`` is the reading's own time; liveness goes by the server's clock."""

    robot_id: str
    first_seen: Annotated[datetime, Meta(description="When the server first knew the robot; never after last_seen.")]
    last_seen: Annotated[datetime, Meta(description="When the server stored the newest reading (server clock).")]
    online: Annotated[bool, Meta(description="Whether last_seen is within stale_after of the server's now.")]
    tags: Annotated[list[str], Meta(description="The robot's fleet tags.")]


class Bucket(msgspec.Struct, gc=False):
    """One time bucket of one robot's history; ``status_share`` is each status's share of its readings. A bucket
    without readings has ``readings: 0`` and nulls. ``start`` carries the offset of the request's ``tz``."""

    start: datetime
    readings: int
    battery_level_avg: float | None
    battery_level_min: float | None
    battery_level_max: float | None
    battery_voltage_avg: float | None
    battery_voltage_min: float | None
    battery_voltage_max: float | None
    last_location: Location | None
    status_share: dict[str, float]
    top_status: Status | None


class BucketSeries(msgspec.Struct, gc=False):
    robot_id: str
    bucket: str
    tz: str
    since: datetime
    until: datetime
    buckets: list[Bucket]


Metres = Annotated[float, Meta(description="Metres of path: haversine distances between successive readings.")]
NextCursor = Annotated[str | None, Meta(description="Pass as `cursor` to get the next page; null on the last page.")]


class RobotDistance(msgspec.Struct, gc=False):
    robot_id: str
    readings: Annotated[int, Meta(description="Readings with a location in the range (the path's points).")]
    metres: Metres


class StationaryRobot(msgspec.Struct, gc=False):
    robot_id: str
    metres: Metres
    readings: Annotated[int, Meta(description="Readings in the window.")]
    last_seen: Annotated[datetime, Meta(description="The newest reading's timestamp.")]
    location: Location | None


class DailyActivity(msgspec.Struct, gc=False):
    """Hours spent in each status during one local day."""

    robot_id: str
    day: Annotated[str, Meta(description="The local day, YYYY-MM-DD.")]
    tz: str
    hours: Annotated[dict[str, float], Meta(description="Hours in each status (unrounded).")]


class RobotPage(msgspec.Struct, gc=False):
    """One page of robots' latest states."""

    robots: list[RobotState]
    next_cursor: NextCursor = None


class StationaryPage(msgspec.Struct, gc=False):
    robots: list[StationaryRobot]
    next_cursor: NextCursor = None


class DistancePage(msgspec.Struct, gc=False):
    robots: list[RobotDistance]
    next_cursor: NextCursor = None


class ActivityPage(msgspec.Struct, gc=False):
    robots: list[DailyActivity]
    next_cursor: NextCursor = None


class CredentialInfo(msgspec.Struct, gc=False):
    """A credential as listed: never its secret, only the first characters that tell it apart."""

    credential_id: int
    kind: Literal["robot", "key"]
    name: str
    robot_id: str | None
    scopes: list[str]
    robot_ids: list[str] | None
    fleet_tag: str | None
    token_prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class IssuedCredential(msgspec.Struct, gc=False):
    """A new credential with its secret ``token``: shown this once, stored only as a hash."""

    credential_id: int
    kind: Literal["robot", "key"]
    name: str
    token: str
    token_prefix: str
    created_at: datetime
    robot_id: str | None = None
    scopes: list[str] = msgspec.field(default_factory=list)
    expires_previous_at: datetime | None = None
