"""The reading, declared once: what a robot sends, the row every layer passes on, and what the API returns.

Adding a field: add it to ``Reading`` (wire), ``COLUMNS`` and ``Row``/``Record`` (storage, same position),
``to_row`` and ``StoredReading``/``ReadingArgs``/``reading_args`` (output), and a migration. mypy flags a tuple
left behind, and ``tests/unit/test_reading_shape.py`` checks that the column list and the tuple agree.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, NamedTuple

import msgspec
from msgspec import Meta

# 1-64 characters, none a C0/C1 control character (so no NUL, no newline). "/" is allowed, for ROS namespaces
# ("/amr_3", "fleet/a/7"); in a URL path it is sent percent-encoded as %2F. The trailing (?![\s\S]) anchors at the
# true end: Python's `$` also matches before a final "\n". It is documented in the schema but checked by
# ``normalize_robot_id``, whose answers decoding.py caches: as a msgspec constraint it cost half of all decoding.
ROBOT_ID_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]{1,64}$(?![\s\S])"
ROBOT_ID_RULE = (
    "robot_id must be 1-64 characters with no control, format (zero-width, bidi), space or compatibility "
    "(full-width) characters"
)
_robot_id_shape = re.compile(ROBOT_ID_PATTERN).search
# No NUL (PostgreSQL's text holds none): stated in the schema, checked in app.telemetry.decoding, as a msgspec
# pattern per fields key cost 1.1 us.
NO_NUL = "^[^\\x00]*$"
# Unicode categories refused in an id: controls, format characters (zero-width, bidi overrides), separators
# (spaces of every kind, NBSP included), unassigned and private-use code points, surrogates.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Cn", "Co", "Cs"})


def normalize_robot_id(raw: str) -> str | None:
    """The id in NFC (so NFC and NFD spellings name one robot), or None if it breaks the rule above."""
    robot_id = unicodedata.normalize("NFC", raw)
    if _robot_id_shape(robot_id) is None:
        return None
    if not robot_id.isascii() and any(unicodedata.category(c) in REFUSED_CATEGORIES for c in robot_id):
        return None
    if " " in robot_id or unicodedata.normalize("NFKC", robot_id) != robot_id:
        return None  # compatibility look-alikes (full-width letters, ligatures) are refused too
    return robot_id


RobotId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        # "robot-id" names the rest of the rule, which no pattern states (see normalize_robot_id).
        extra_json_schema={"pattern": ROBOT_ID_PATTERN, "format": "robot-id"},
        description="Format robot-id: 1-64 characters; no control, format (zero-width, bidi), space, private-use "
        "or unassigned characters, and none that NFKC changes (full-width letters, ligatures); NFC-normalised; '/' "
        "allowed (percent-encode it as %2F in URL paths).",
        examples=["R2-D2"],
    ),
]
Latitude = Annotated[float, Meta(ge=-90.0, le=90.0, description="Degrees, WGS84.")]
Longitude = Annotated[float, Meta(ge=-180.0, le=180.0, description="Degrees, WGS84.")]
BatteryLevel = Annotated[float, Meta(ge=0.0, le=100.0, description="State of charge, percent.")]
BatteryVoltage = Annotated[float, Meta(ge=0.0, le=1000.0, description="Volts.")]
Heading = Annotated[float, Meta(ge=0.0, le=360.0, description="Degrees clockwise from north, 0-360.")]
Speed = Annotated[float, Meta(ge=0.0, le=1000.0, description="Metres per second.")]
Altitude = Annotated[float, Meta(ge=-12_000.0, le=100_000.0, description="Metres above the WGS84 ellipsoid.")]
Accuracy = Annotated[float, Meta(ge=0.0, le=1_000_000.0, description="Horizontal position accuracy, metres.")]
Status = Literal["idle", "moving", "working", "charging", "error"]
STATUSES: tuple[Status, ...] = ("idle", "moving", "working", "charging", "error")
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1, description="The robot's own reading counter.")]
EpochSeconds = Annotated[float, Meta(ge=0.0, le=253_402_300_799.0, description="Seconds since 1970-01-01 UTC.")]

# The robot's own diagnostics: a flat object of short values, stored as jsonb.
FIELDS_MAX_KEYS = 32
FIELDS_MAX_BYTES = 2048  # of the object as JSON, once decoded and re-encoded compactly
FieldKey = Annotated[str, Meta(min_length=1, max_length=64, extra_json_schema={"pattern": NO_NUL})]
FieldValue = int | float | bool | Annotated[str, Meta(max_length=256, extra_json_schema={"pattern": NO_NUL})]
Fields = Annotated[
    dict[FieldKey, FieldValue],
    Meta(
        max_length=FIELDS_MAX_KEYS,
        description=f"The robot's own values: numbers, booleans or strings up to 256 characters; at most "
        f"{FIELDS_MAX_KEYS} keys and {FIELDS_MAX_BYTES} bytes as JSON.",
        examples=[{"motor_temp_c": 41.5, "estop": False, "firmware": "2.4.1"}],
    ),
]


# Every struct here holds plain values only, so none can be part of a reference cycle: gc=False keeps the
# thousands created per request (a batch, a fleet listing) out of the cyclic garbage collector's scans.
class Location(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    latitude: Latitude
    longitude: Longitude


class Pose(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A position in a local map frame, for robots without GPS (ROS ``geometry_msgs/Pose2D`` with its frame)."""

    frame: Annotated[
        str,
        Meta(
            min_length=1, max_length=64, description="The map frame, e.g. 'map'.", extra_json_schema={"pattern": NO_NUL}
        ),
    ]
    x: Annotated[float, Meta(ge=-1e7, le=1e7, description="Metres.")]
    y: Annotated[float, Meta(ge=-1e7, le=1e7, description="Metres.")]
    yaw: Annotated[float, Meta(ge=-7.0, le=7.0, description="Radians.")] | None = None


class RosTime(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """ROS ``builtin_interfaces/Time``; stored to the microsecond (nanoseconds are truncated)."""

    sec: Annotated[int, Meta(ge=0, le=253_402_300_799)]
    nanosec: Annotated[int, Meta(ge=0, le=999_999_999)]


Timestamp = Annotated[
    Annotated[datetime, Meta(tz=True)] | EpochSeconds | RosTime,
    Meta(
        description="RFC 3339 with a zone, epoch seconds, or {sec, nanosec}; stored to the microsecond. "
        "Absent: the server's receive time."
    ),
]


class Reading(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One telemetry reading as a robot sends it: ``location``, ``pose`` or both."""

    robot_id: RobotId
    battery_level: BatteryLevel
    location: Annotated[
        Location | None,
        Meta(
            description="WGS84 position; a reading needs this, a pose, or both.",
            examples=[{"latitude": 37.1, "longitude": -122.3}],
        ),
    ] = None
    timestamp: Timestamp | None = None
    battery_voltage: BatteryVoltage | None = None
    status: Status | None = None
    seq: Seq | None = None
    heading: Heading | None = None
    speed: Speed | None = None
    altitude: Altitude | None = None
    accuracy: Accuracy | None = None
    pose: Pose | None = None
    fields: Fields | None = None


class Column(NamedTuple):
    name: str
    sql_type: str


# The stored reading's columns after its robot, in table order. SQL column lists are built from this.
COLUMNS: Final[tuple[Column, ...]] = (
    Column("time", "timestamptz"),
    Column("latitude", "float8"),
    Column("longitude", "float8"),
    Column("battery_level", "float8"),
    Column("battery_voltage", "float8"),
    Column("status", "robot_status"),
    Column("seq", "int8"),
    Column("heading", "float8"),
    Column("speed", "float8"),
    Column("altitude", "float8"),
    Column("accuracy", "float8"),
    Column("pose_frame", "text"),
    Column("pose_x", "float8"),
    Column("pose_y", "float8"),
    Column("pose_yaw", "float8"),
    Column("fields", "jsonb"),
)
COLUMN_NAMES: Final = tuple(column.name for column in COLUMNS)

# Plain tuples, not NamedTuples: building one per reading is the ingest hot loop, and a NamedTuple costs
# ~0.25 us more per row (measured with timeit). Row starts with the robot's id, Record with its key.
# fmt: off
Row = tuple[
    str, datetime, float | None, float | None, float, float | None, str | None, int | None,
    float | None, float | None, float | None, float | None, str | None, float | None, float | None, float | None,
    str | None,
]
Record = tuple[
    int, datetime, float | None, float | None, float, float | None, str | None, int | None,
    float | None, float | None, float | None, float | None, str | None, float | None, float | None, float | None,
    str | None,
]
# fmt: on
TIME: Final = 1  # the position of the reading's time in a Row or a Record

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_encode_json = msgspec.json.Encoder().encode


def reading_time(timestamp: datetime | float | RosTime) -> datetime:
    """The instant a reading's timestamp names, whichever of the three forms it came in."""
    if isinstance(timestamp, datetime):
        return timestamp
    if isinstance(timestamp, RosTime):
        return _EPOCH + timedelta(seconds=timestamp.sec, microseconds=timestamp.nanosec // 1000)
    return _EPOCH + timedelta(microseconds=round(timestamp * 1_000_000))


def encode_fields(fields: dict[str, Any]) -> str:
    return _encode_json(fields).decode()


def to_row(reading: Reading, time: datetime, fields_json: str | None) -> Row:
    """The only place a Row is built. Branches instead of conditional expressions: this runs once per reading."""
    location, pose, r = reading.location, reading.pose, reading
    if pose is None and location is not None:  # the common outdoor reading
        return (
            r.robot_id, time, location.latitude, location.longitude, r.battery_level, r.battery_voltage, r.status,
            r.seq, r.heading, r.speed, r.altitude, r.accuracy, None, None, None, None, fields_json,
        )  # fmt: skip
    latitude = longitude = None
    if location is not None:
        latitude, longitude = location.latitude, location.longitude
    frame = x = y = yaw = None
    if pose is not None:
        frame, x, y, yaw = pose.frame, pose.x, pose.y, pose.yaw
    return (
        r.robot_id, time, latitude, longitude, r.battery_level, r.battery_voltage, r.status,
        r.seq, r.heading, r.speed, r.altitude, r.accuracy, frame, x, y, yaw, fields_json,
    )  # fmt: skip


# A robot's latest-state candidate: (order, stored_at, record), where order = min(timestamp, stored_at).
Candidate = tuple[datetime, datetime, Record]


def candidate(record: Record, stored_at: datetime) -> Candidate:
    time = record[TIME]
    return (time if time < stored_at else stored_at, stored_at, record)


def is_newer(challenger: Candidate, current: Candidate | None) -> bool:
    """ "Newer wins", the one rule deciding whether a reading replaces a robot's latest state (its SQL twins are
    UPSERT_LATEST and FOLLOW_LATEST): readings are ordered by min(timestamp, when the server stored it), then by
    timestamp.

    So a late reading (backfill, store-and-forward) never regresses the state, since its timestamp is older; and
    a reading stamped in the future by a fast clock counts only as "now" when it arrived, so the robot's next
    correctly stamped reading replaces it instead of being hidden behind it.
    """
    if current is None or challenger[0] > current[0]:
        return True
    return challenger[0] == current[0] and challenger[2][TIME] > current[2][TIME]


class StoredReading(msgspec.Struct, gc=False):
    """A reading as stored: every field the robot sent, and the time it is filed under."""

    timestamp: datetime
    location: Location | None
    battery_level: float
    battery_voltage: float | None
    status: Status | None
    seq: int | None
    heading: float | None
    speed: float | None
    altitude: float | None
    accuracy: float | None
    pose: Pose | None
    fields: dict[str, FieldValue] | None


# StoredReading's fields in order, so that it and the structs extending it (a robot's state, a streamed reading)
# are built positionally: ~2x faster than keyword arguments from a dict, and mypy checks the types all the same.
ReadingArgs = tuple[
    datetime,
    Location | None,
    float,
    float | None,
    Status | None,
    int | None,
    float | None,
    float | None,
    float | None,
    float | None,
    Pose | None,
    dict[str, FieldValue] | None,
]


_decode_fields = msgspec.json.Decoder(dict[str, FieldValue]).decode


def reading_args(values: Any) -> ReadingArgs:
    """Column values in ``COLUMNS`` order (a Row or Record from its time on, or a database record) as
    StoredReading's positional arguments."""
    latitude, frame, fields = values[1], values[11], values[15]
    return (
        values[0],
        None if latitude is None else Location(latitude, values[2]),
        values[3],
        values[4],
        values[5],
        values[6],
        values[7],
        values[8],
        values[9],
        values[10],
        None if frame is None else Pose(frame, values[12], values[13], values[14]),
        None if fields is None else _decode_fields(fields),
    )


def stored_reading(values: Any) -> StoredReading:
    return StoredReading(*reading_args(values))
