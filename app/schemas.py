"""Every payload the API reads or writes, as strict msgspec structs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

# 1-64 characters, none a C0/C1 control character (so no NUL, no newline) and no "/" (the id is a URL path
# segment). The trailing (?![\s\S]) anchors at the true end: Python's `$` also matches before a final "\n".
# It is documented in the schema but checked in payloads.py, which caches the ids it has already seen:
# as a msgspec constraint it cost half of all decoding time (0.47 of 1.01 us per reading).
ROBOT_ID_PATTERN = r"^[^\x00-\x1f\x7f-\x9f/]{1,64}$(?![\s\S])"

RobotId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        extra_json_schema={"pattern": ROBOT_ID_PATTERN},
        description="1-64 characters; no control characters and no '/'.",
        examples=["R2-D2"],
    ),
]
Latitude = Annotated[float, Meta(ge=-90.0, le=90.0, description="Degrees, WGS84.")]
Longitude = Annotated[float, Meta(ge=-180.0, le=180.0, description="Degrees, WGS84.")]
BatteryLevel = Annotated[float, Meta(ge=0.0, le=100.0, description="State of charge, percent.")]
BatteryVoltage = Annotated[float, Meta(ge=0.0, le=1000.0, description="Volts.")]
Status = Literal["idle", "moving", "working", "charging", "error"]
STATUSES: tuple[Status, ...] = ("idle", "moving", "working", "charging", "error")
Timestamp = Annotated[
    datetime,
    Meta(tz=True, description="RFC 3339 with a zone. Absent: the server's receive time."),
]
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1, description="The robot's own reading counter.")]


# Every struct here holds plain values only, so none can be part of a reference cycle: gc=False keeps the
# thousands created per request (a batch, a fleet listing) out of the cyclic garbage collector's scans.
class Location(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    latitude: Latitude
    longitude: Longitude


class Reading(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One telemetry reading as a robot sends it."""

    robot_id: RobotId
    location: Location
    battery_level: BatteryLevel
    timestamp: Timestamp | None = None
    battery_voltage: BatteryVoltage | None = None
    status: Status | None = None
    seq: Seq | None = None


class IngestResult(msgspec.Struct, gc=False):
    """Sent only after the request's rows are committed."""

    accepted: int
    duplicates: int


class StoredReading(msgspec.Struct, gc=False):
    timestamp: datetime
    location: Location
    battery_level: float
    battery_voltage: float | None
    status: Status | None
    seq: int | None


class HistoryPage(msgspec.Struct, gc=False):
    robot_id: str
    readings: list[StoredReading]
    next_cursor: str | None = None


class Health(msgspec.Struct, gc=False):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["up", "down"]


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


TELEMETRY_BODY = Reading | list[Reading]


class RobotState(msgspec.Struct, gc=False):
    """A robot's newest reading (``last_seen`` is its timestamp). ``first_seen`` is when the server registered
    the robot; ``online`` is whether its newest reading is less than ``stale_after`` seconds old."""

    robot_id: str
    first_seen: datetime
    last_seen: datetime
    online: bool
    location: Location
    battery_level: float
    battery_voltage: float | None
    status: Status | None
    seq: int | None


class Bucket(msgspec.Struct, gc=False):
    """One time bucket of one robot's history; ``status_share`` is each status's share of its readings."""

    start: datetime
    readings: int
    battery_level_avg: float
    battery_level_min: float
    battery_level_max: float
    battery_voltage_avg: float | None
    battery_voltage_min: float | None
    battery_voltage_max: float | None
    last_location: Location
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
    location: Location


class DailyActivity(msgspec.Struct, gc=False):
    """Hours spent in each status during one local day."""

    robot_id: str
    day: str
    tz: str
    hours: dict[str, float]
