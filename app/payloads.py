"""Turn a POSTed body into validated readings, or into the full list of what is wrong with it."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from app.schemas import TELEMETRY_BODY, FieldError, Reading

_decode_body = msgspec.json.Decoder(TELEMETRY_BODY).decode
_decode_raw_items = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_reading = msgspec.json.Decoder(Reading).decode
_PATH_MARK = " - at `"


class PayloadError(Exception):
    """The body is not valid: ``malformed`` means not JSON at all (400), otherwise invalid readings (422)."""

    def __init__(self, errors: list[FieldError], *, malformed: bool = False) -> None:
        super().__init__(errors[0].message if errors else "invalid payload")
        self.errors = errors
        self.malformed = malformed


def _field_error(exc: msgspec.MsgspecError, index: int | None, prefix: str = "$") -> FieldError:
    message, _, path = str(exc).partition(_PATH_MARK)
    path = path.rstrip("`")
    # Decoding one batch item yields paths relative to that item ("$.location..."); give the full one.
    field = prefix + path[1:] if path else prefix
    return FieldError(field=field, message=message, index=index)


def decode_readings(body: bytes) -> list[Reading]:
    """Decode one reading or an array of readings, reporting every bad item, not just the first."""
    try:
        decoded = _decode_body(body)
    except msgspec.DecodeError as exc:
        if not isinstance(exc, msgspec.ValidationError):
            raise PayloadError([_field_error(exc, None)], malformed=True) from None
        first_error = exc
    else:
        return decoded if isinstance(decoded, list) else [decoded]

    # Slow path, only for invalid bodies: re-decode item by item to name each bad index.
    try:
        items = _decode_raw_items(body)
    except msgspec.DecodeError:
        raise PayloadError([_field_error(first_error, None)]) from None
    errors = []
    for index, item in enumerate(items):
        try:
            _decode_reading(item)
        except msgspec.DecodeError as exc:
            errors.append(_field_error(exc, index, prefix=f"$[{index}]"))
    # Every item decoding on its own while the whole failed cannot happen; report the whole-body error then.
    raise PayloadError(errors or [_field_error(first_error, None)])


def resolve_timestamps(
    readings: list[Reading], received_at: datetime, max_future: timedelta, max_past: timedelta
) -> list[datetime]:
    """Each reading's time: its own, or the receive time when absent. Raises if any is outside the window.

    Readings without a timestamp get ``received_at`` plus their index in microseconds, so that several of them
    in one request stay distinct, ordered readings instead of collapsing into one (robot, time) key.
    """
    earliest, latest = received_at - max_past, received_at + max_future
    times = []
    errors = []
    single = len(readings) == 1
    for index, reading in enumerate(readings):
        ts = reading.timestamp
        if ts is None:
            ts = received_at + timedelta(microseconds=index)
        elif not earliest <= ts <= latest:
            errors.append(
                FieldError(
                    field="$.timestamp" if single else f"$[{index}].timestamp",
                    message=f"timestamp must be between {earliest.isoformat()} and {latest.isoformat()}",
                    index=None if single else index,
                )
            )
        times.append(ts)
    if errors:
        raise PayloadError(errors)
    return times
