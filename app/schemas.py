"""Every payload the API writes besides the reading itself (``app.ingest.reading``), as msgspec structs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from app.ingest.reading import Location, Status, StoredReading


class IngestResult(msgspec.Struct, gc=False):
    """Sent only after the request's rows are committed."""

    accepted: int
    duplicates: int


class HistoryPage(msgspec.Struct, gc=False):
    robot_id: str
    readings: list[StoredReading]
    next_cursor: str | None = None


class Health(msgspec.Struct, gc=False):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["up", "down"]
    # "off" means any client can read and write everything (FLEET_AUTH=off, for trusted networks only).
    authentication: Literal["on", "off"]


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
    """A robot's newest reading (``last_seen`` is its timestamp). ``first_seen`` is when the server registered
    the robot; ``online`` is whether its newest reading is less than ``stale_after`` seconds old."""

    robot_id: str
    first_seen: datetime
    last_seen: datetime
    online: bool
    tags: list[str]


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


class RobotDistance(msgspec.Struct, gc=False):
    robot_id: str
    readings: int
    metres: float


class StationaryRobot(msgspec.Struct, gc=False):
    robot_id: str
    metres_moved: float
    readings: int
    last_seen: datetime
    location: Location | None


class DailyActivity(msgspec.Struct, gc=False):
    """Hours spent in each status during one local day."""

    robot_id: str
    day: str
    tz: str
    hours: dict[str, float]


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
