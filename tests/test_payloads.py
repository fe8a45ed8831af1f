"""Unit tests of body decoding, the timestamp window, settings and cursors: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from app.history import BadCursor, decode_cursor, encode_cursor
from app.payloads import PayloadError, Window, parse_readings
from app.settings import Settings, load_settings

SEED = b'{"robot_id": "R2-D2", "location": {"latitude": 37.1, "longitude": -122.3}, "battery_level": 87.5}'
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
WINDOW = Window.around(NOW, timedelta(minutes=10), timedelta(days=30))


def decode(body: bytes) -> list[datetime]:
    return parse_readings(body, WINDOW)[1]


def test_seed_payload_decodes_to_one_reading() -> None:
    [reading], [at] = parse_readings(SEED, WINDOW)
    assert at == NOW  # no timestamp: the receive time
    assert reading.robot_id == "R2-D2"
    assert (reading.location.latitude, reading.location.longitude) == (37.1, -122.3)
    assert reading.battery_level == 87.5
    assert reading.timestamp is None and reading.status is None


def test_every_bad_item_of_a_batch_is_named() -> None:
    good = msgspec.json.decode(SEED)
    bad_lat = {**good, "location": {"latitude": 91, "longitude": 0}}
    bad_status = {**good, "status": "flying"}
    bad_id = {**good, "robot_id": "a/b"}
    late = {**good, "timestamp": (NOW - timedelta(days=40)).isoformat()}
    body = msgspec.json.encode([good, bad_lat, good, bad_status, bad_id, late])
    with pytest.raises(PayloadError) as info:
        decode(body)
    assert not info.value.malformed
    # Decoder errors and the checks made after decoding are reported together.
    assert [(e.index, e.field) for e in info.value.errors] == [
        (1, "$[1].location.latitude"),
        (3, "$[3].status"),
        (4, "$[4].robot_id"),
        (5, "$[5].timestamp"),
    ]


def test_malformed_json_is_flagged() -> None:
    with pytest.raises(PayloadError) as info:
        decode(b'{"robot_id": ')
    assert info.value.malformed


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
        with pytest.raises(PayloadError) as info:
            decode(body)
        assert [e.field for e in info.value.errors] == ["$.timestamp"]


def test_settings_read_prefixed_environment() -> None:
    settings = load_settings({"FLEET_FLUSH_MAX_ROWS": "123", "FLEET_MIGRATE_ON_START": "false", "OTHER": "x"})
    assert settings.flush_max_rows == 123
    assert settings.migrate_on_start is False
    assert settings.flush_interval_ms == Settings().flush_interval_ms


def test_settings_reject_nonsense() -> None:
    with pytest.raises(msgspec.ValidationError):
        load_settings({"FLEET_FLUSH_MAX_ROWS": "0"})


def test_cursor_round_trips_to_the_microsecond() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert decode_cursor(encode_cursor(when)) == when


@pytest.mark.parametrize("token", ["", "!!!", "AAAA", encode_cursor(NOW) + "x"])
def test_foreign_cursors_are_rejected(token: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(token)
