"""Turn a POSTed body into validated readings and their times, or into the full list of what is wrong with it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from app.schemas import ROBOT_ID_PATTERN, TELEMETRY_BODY, FieldError, Reading

_decode_body = msgspec.json.Decoder(TELEMETRY_BODY).decode
_decode_raw_items = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_reading = msgspec.json.Decoder(Reading).decode
_PATH_MARK = " - at `"
_robot_id_ok = re.compile(ROBOT_ID_PATTERN).search
# Ids already checked: a fleet sends the same few thousand ids over and over. Cleared when it grows past the
# bound, so a client sending endless new ids costs memory only up to it.
_valid_robot_ids: set[str] = set()
VALID_ROBOT_IDS_MAX = 100_000
ROBOT_ID_RULE = "robot_id must be 1-64 characters with no control characters and no '/'"


class PayloadError(Exception):
    """The body is not valid: ``malformed`` means not JSON at all (400), otherwise invalid readings (422)."""

    def __init__(self, errors: list[FieldError], *, malformed: bool = False) -> None:
        super().__init__(errors[0].message if errors else "invalid payload")
        self.errors = errors
        self.malformed = malformed


@dataclass(frozen=True, slots=True)
class Window:
    """The accepted timestamp range, and the time given to readings that carry none."""

    received_at: datetime
    earliest: datetime
    latest: datetime

    @classmethod
    def around(cls, received_at: datetime, max_future: timedelta, max_past: timedelta) -> Window:
        return cls(received_at, received_at - max_past, received_at + max_future)


def parse_readings(body: bytes, window: Window) -> tuple[list[Reading], list[datetime]]:
    """Decode one reading or an array, check each, and return the readings with their times.

    Raises PayloadError naming every bad reading, not just the first. A reading without a timestamp gets the
    receive time plus its index in microseconds, so several in one request stay distinct and ordered.
    """
    try:
        decoded = _decode_body(body)
    except msgspec.ValidationError as exc:
        _raise_for_each_item(body, window, exc)
    except msgspec.DecodeError as exc:
        raise PayloadError([_field_error(exc, None)], malformed=True) from None
    single = not isinstance(decoded, list)
    readings = [decoded] if isinstance(decoded, Reading) else decoded
    errors: list[FieldError] = []
    times = [_check(i, reading, window, errors, single) for i, reading in enumerate(readings)]
    if errors:
        raise PayloadError(errors)
    return readings, times


def _raise_for_each_item(body: bytes, window: Window, first_error: msgspec.ValidationError) -> None:
    """Slow path, only for invalid bodies: decode item by item to name each bad index."""
    try:
        items = _decode_raw_items(body)
    except msgspec.DecodeError:
        raise PayloadError([_field_error(first_error, None)]) from None
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        try:
            reading = _decode_reading(item)
        except msgspec.DecodeError as exc:
            errors.append(_field_error(exc, index, prefix=f"$[{index}]"))
        else:
            _check(index, reading, window, errors, single=False)
    # Every item passing on its own while the whole failed cannot happen; report the whole-body error then.
    raise PayloadError(errors or [_field_error(first_error, None)])


def _check(index: int, reading: Reading, window: Window, errors: list[FieldError], single: bool) -> datetime:
    """What the decoder does not check: the robot_id pattern and the timestamp window."""
    robot_id = reading.robot_id
    if robot_id not in _valid_robot_ids:
        if _robot_id_ok(robot_id) is None:
            errors.append(_error(index, "robot_id", ROBOT_ID_RULE, single))
        else:
            if len(_valid_robot_ids) >= VALID_ROBOT_IDS_MAX:
                _valid_robot_ids.clear()
            _valid_robot_ids.add(robot_id)
    ts = reading.timestamp
    if ts is None:
        return window.received_at + timedelta(microseconds=index)
    if not window.earliest <= ts <= window.latest:
        message = f"timestamp must be between {window.earliest.isoformat()} and {window.latest.isoformat()}"
        errors.append(_error(index, "timestamp", message, single))
    return ts


def _error(index: int, field: str, message: str, single: bool) -> FieldError:
    if single:
        return FieldError(field=f"$.{field}", message=message)
    return FieldError(field=f"$[{index}].{field}", message=message, index=index)


def _field_error(exc: msgspec.MsgspecError, index: int | None, prefix: str = "$") -> FieldError:
    message, _, path = str(exc).partition(_PATH_MARK)
    path = path.rstrip("`")
    # Decoding one batch item yields paths relative to that item ("$.location..."); give the full one.
    field = prefix + path[1:] if path else prefix
    return FieldError(field=field, message=message, index=index)
