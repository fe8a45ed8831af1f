"""Body decoding: the seed payload, every bad item named, the timestamp forms and window; no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from app.model.errors import InvalidReading, MalformedBody, TooManyReadings
from app.model.reading import TIME, Location, Pose, StoredReading, stored_reading
from app.telemetry.decoding import Window, parse_rows

SEED = b'{"robot_id": "R2-D2", "location": {"latitude": 37.1, "longitude": -122.3}, "battery_level": 87.5}'
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
WINDOW = Window.around(NOW, timedelta(minutes=10), timedelta(days=30))
MAX_READINGS = 10_000


def decode(body: bytes) -> list[datetime]:
    return [row[TIME] for row in parse_rows(body, WINDOW, MAX_READINGS)]


def decode_one(document: dict[str, object]) -> tuple[str, StoredReading]:
    [row] = parse_rows(msgspec.json.encode(document), WINDOW, MAX_READINGS)
    return row[0], stored_reading(row[1:])


def test_seed_payload_decodes_to_one_reading() -> None:
    robot_id, stored = decode_one(msgspec.json.decode(SEED))
    assert robot_id == "R2-D2"
    assert stored.timestamp == NOW  # no timestamp: the receive time
    assert stored.location == Location(37.1, -122.3)
    assert stored.battery_level == 87.5
    assert stored.status is None and stored.pose is None and stored.fields is None


def test_every_optional_field_reaches_the_row() -> None:
    document = {
        **msgspec.json.decode(SEED),
        "heading": 359.5,
        "speed": 1.25,
        "altitude": -3.5,
        "accuracy": 0.4,
        "pose": {"frame": "map", "x": 1.5, "y": -2.0, "yaw": 0.25},
        "fields": {"temp_c": 41.5, "count": 3, "estop": False, "fw": "2.4.1"},
        "battery_voltage": 24.6,
        "status": "moving",
        "seq": 7,
    }
    _, stored = decode_one(document)
    assert (stored.heading, stored.speed, stored.altitude, stored.accuracy) == (359.5, 1.25, -3.5, 0.4)
    assert stored.pose == Pose("map", 1.5, -2.0, 0.25)
    assert stored.fields == {"temp_c": 41.5, "count": 3, "estop": False, "fw": "2.4.1"}
    assert isinstance(stored.fields["count"], int)  # an integer stays one
    assert (stored.battery_voltage, stored.status, stored.seq) == (24.6, "moving", 7)


def test_pose_alone_is_enough() -> None:
    _, stored = decode_one({"robot_id": "/amr_3", "battery_level": 5, "pose": {"frame": "map", "x": 0, "y": 0}})
    assert stored.location is None and stored.pose == Pose("map", 0.0, 0.0, None)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-28T11:00:00.123456+00:00", datetime(2026, 11, 28, 11, 0, 0, 123456, tzinfo=UTC)),
        (NOW.timestamp() - 60.5, NOW - timedelta(seconds=60.5)),
        (int(NOW.timestamp()) - 60, NOW - timedelta(seconds=60)),
        (
            {"sec": int(NOW.timestamp()) - 60, "nanosec": 123_456_789},
            NOW - timedelta(seconds=60) + timedelta(microseconds=123_456),
        ),
    ],
    ids=["rfc3339", "epoch float", "epoch int", "ros time"],
)
def test_timestamp_forms_name_the_same_instant(timestamp: object, expected: datetime) -> None:
    _, stored = decode_one({**msgspec.json.decode(SEED), "timestamp": timestamp})
    assert stored.timestamp == expected


def test_every_bad_item_of_a_batch_is_named() -> None:
    good = msgspec.json.decode(SEED)
    bad_lat = {**good, "location": {"latitude": 91, "longitude": 0}}
    bad_status = {**good, "status": "flying"}
    bad_id = {**good, "robot_id": "a\tb"}
    late = {**good, "timestamp": (NOW - timedelta(days=40)).isoformat()}
    body = msgspec.json.encode([good, bad_lat, good, bad_status, bad_id, late])
    with pytest.raises(InvalidReading) as info:
        decode(body)
    # Decoder errors and the checks made after decoding are reported together.
    assert [(e.index, e.field) for e in info.value.errors] == [
        (1, "$[1].location.latitude"),
        (3, "$[3].status"),
        (4, "$[4].robot_id"),
        (5, "$[5].timestamp"),
    ]


def test_malformed_json_is_flagged() -> None:
    with pytest.raises(MalformedBody):
        decode(b'{"robot_id": ')


def test_readings_without_timestamp_stay_distinct_and_ordered() -> None:
    times = decode(b"[" + b",".join([SEED] * 3) + b"]")
    assert times == [NOW, NOW + timedelta(microseconds=1), NOW + timedelta(microseconds=2)]


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        (timedelta(minutes=10), True),
        (timedelta(minutes=10, seconds=1), False),
        (-timedelta(days=30), True),
        (-timedelta(days=30, seconds=1), False),
    ],
)
def test_timestamp_window_edges(offset: timedelta, ok: bool) -> None:
    body = msgspec.json.encode({**msgspec.json.decode(SEED), "timestamp": (NOW + offset).isoformat()})
    if ok:
        assert decode(body) == [NOW + offset]
    else:
        with pytest.raises(InvalidReading) as info:
            decode(body)
        assert [e.field for e in info.value.errors] == ["$.timestamp"]


def test_reading_cap_is_checked_before_items_are_validated_one_by_one() -> None:
    # 4M bare numbers: every item is invalid, and naming each one would build a huge answer.
    body = b"[" + b",".join([b"1"] * 20_001) + b"]"
    with pytest.raises(TooManyReadings, match="at most 10000"):
        parse_rows(body, WINDOW, MAX_READINGS)


def test_error_lists_are_capped_and_say_how_many_there_were() -> None:
    body = b"[" + b",".join([b"1"] * 500) + b"]"
    with pytest.raises(InvalidReading) as info:
        parse_rows(body, WINDOW, MAX_READINGS)
    assert len(info.value.errors) == 100
    assert info.value.detail.startswith("500 problem(s) found (the first 100 are listed)")
