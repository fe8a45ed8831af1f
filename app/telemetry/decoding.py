"""Turn a POSTed body into validated rows, or into the full list of what is wrong with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from app.model.errors import InvalidReading, MalformedBody, TooManyReadings
from app.model.payloads import FieldError
from app.model.reading import (
    FIELDS_MAX_BYTES,
    ROBOT_ID_RULE,
    Reading,
    Row,
    encode_fields,
    normalize_robot_id,
    reading_time,
    to_row,
)

TELEMETRY_BODY = Reading | list[Reading]

_decode_body = msgspec.json.Decoder(TELEMETRY_BODY).decode
_decode_raw_items = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_reading = msgspec.json.Decoder(Reading).decode
_PATH_MARK = " - at `"
# Ids already checked, each with its NFC form: a fleet sends the same few thousand ids over and over. Cleared when
# it grows past the bound, so a client sending endless new ids costs memory only up to it.
_valid_robot_ids: dict[str, str] = {}
VALID_ROBOT_IDS_MAX = 100_000
LOCATION_RULE = "a reading needs a location, a pose, or both"
# PostgreSQL's text and jsonb cannot hold U+0000: stored, it would fail the whole flush, other clients' rows too.
NUL_RULE = "fields keys and values may not contain U+0000 (NUL)"
MAX_LISTED_ERRORS = 100  # an error list names at most this many problems, and says how many there were


@dataclass(frozen=True, slots=True)
class Window:
    """The accepted timestamp range, and the time given to readings that carry none."""

    received_at: datetime
    earliest: datetime
    latest: datetime

    @classmethod
    def around(cls, received_at: datetime, max_future: timedelta, max_past: timedelta) -> Window:
        return cls(received_at, received_at - max_past, received_at + max_future)


def parse_rows(body: bytes, window: Window, max_readings: int) -> list[Row]:
    """Decode one reading or an array of at most ``max_readings``, check each, and return one row per reading.

    Raises InvalidReading naming the bad readings, not just the first (MalformedBody when it is not JSON,
    TooManyReadings past the cap, which is checked before any item is validated one by one). A reading without
    a timestamp gets the receive time plus its index in microseconds, so several in one request stay distinct
    and ordered.
    """
    try:
        decoded = _decode_body(body)
    except msgspec.ValidationError as exc:
        _raise_for_each_item(body, window, exc, max_readings)
    except msgspec.DecodeError as exc:
        raise MalformedBody(str(exc).partition(_PATH_MARK)[0], errors=[field_error(exc, None)]) from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise _not_json(exc) from None
    single = not isinstance(decoded, list)
    readings = [decoded] if isinstance(decoded, Reading) else decoded
    _check_count(len(readings), max_readings)
    errors: list[FieldError] = []
    rows = [_check(i, reading, window, errors, single) for i, reading in enumerate(readings)]
    if errors:
        raise _invalid(errors)
    return rows


def _not_json(exc: UnicodeDecodeError | RecursionError) -> MalformedBody:
    if isinstance(exc, UnicodeDecodeError):
        return MalformedBody("the body is not valid UTF-8")
    return MalformedBody("the JSON is nested too deeply")


def _check_count(count: int, max_readings: int) -> None:
    if count > max_readings:
        raise TooManyReadings(f"a request may carry at most {max_readings} readings, this one has {count}")


def _invalid(errors: list[FieldError]) -> InvalidReading:
    listed = errors[:MAX_LISTED_ERRORS]
    more = f" (the first {len(listed)} are listed)" if len(errors) > len(listed) else ""
    return InvalidReading(f"{len(errors)} problem(s) found{more}; nothing from this request was stored", errors=listed)


def _raise_for_each_item(body: bytes, window: Window, first_error: msgspec.ValidationError, max_readings: int) -> None:
    """Slow path, only for invalid bodies: decode item by item to name each bad index."""
    try:
        items = _decode_raw_items(body)
    except msgspec.DecodeError:
        raise _invalid([field_error(first_error, None)]) from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise _not_json(exc) from None
    _check_count(len(items), max_readings)
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        try:
            reading = _decode_reading(item)
        except msgspec.DecodeError as exc:
            errors.append(field_error(exc, index, prefix=f"$[{index}]"))
        else:
            _check(index, reading, window, errors, single=False)
    # Every item passing on its own while the whole failed cannot happen; report the whole-body error then.
    raise _invalid(errors or [field_error(first_error, None)])


def _check(index: int, reading: Reading, window: Window, errors: list[FieldError], single: bool) -> Row:
    """What the decoder does not check (the robot_id pattern, the timestamp window, location or pose, the
    size of ``fields``), then the reading's row."""
    raw_id = reading.robot_id
    robot_id = _valid_robot_ids.get(raw_id)
    if robot_id is None:
        robot_id = normalize_robot_id(raw_id)
        if robot_id is None:
            errors.append(_error(index, "robot_id", ROBOT_ID_RULE, single))
        else:
            if len(_valid_robot_ids) >= VALID_ROBOT_IDS_MAX:
                _valid_robot_ids.clear()
            _valid_robot_ids[raw_id] = robot_id
    if robot_id is not None and robot_id is not raw_id:
        reading.robot_id = robot_id
    if reading.location is None and reading.pose is None:
        errors.append(_error(index, "location", LOCATION_RULE, single))
    elif reading.pose is not None and "\x00" in reading.pose.frame:
        errors.append(_error(index, "pose.frame", "frame may not contain U+0000 (NUL)", single))
    ts = reading.timestamp
    if ts is None:
        time = window.received_at + timedelta(microseconds=index)
    else:
        time = ts if type(ts) is datetime else reading_time(ts)  # the common form without a call
        if not window.earliest <= time <= window.latest:
            message = f"timestamp must be between {window.earliest.isoformat()} and {window.latest.isoformat()}"
            errors.append(_error(index, "timestamp", message, single))
    fields_json = None
    if reading.fields is not None:
        fields_json = encode_fields(reading.fields)
        if len(fields_json.encode()) > FIELDS_MAX_BYTES:
            errors.append(_error(index, "fields", f"fields may take at most {FIELDS_MAX_BYTES} bytes as JSON", single))
        if "\\u0000" in fields_json and has_nul(reading.fields):  # the search first: it costs ~20 ns
            errors.append(_error(index, "fields", NUL_RULE, single))
    return to_row(reading, time, fields_json)


def _error(index: int, field: str, message: str, single: bool) -> FieldError:
    if single:
        return FieldError(field=f"$.{field}", message=message)
    return FieldError(field=f"$[{index}].{field}", message=message, index=index)


def field_error(exc: msgspec.MsgspecError, index: int | None, prefix: str = "$") -> FieldError:
    message, _, path = str(exc).partition(_PATH_MARK)
    path = path.rstrip("`")
    # Decoding one batch item yields paths relative to that item ("$.location..."); give the full one.
    field = prefix + path[1:] if path else prefix
    return FieldError(field=field, message=message, index=index)


def has_nul(fields: dict[str, Any]) -> bool:
    return any("\x00" in key or (type(value) is str and "\x00" in value) for key, value in fields.items())
