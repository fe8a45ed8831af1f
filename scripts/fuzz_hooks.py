"""schemathesis hooks for `make fuzz`: the rules the OpenAPI document names in words but JSON Schema cannot state,
taught to the generator, so that a "schema-valid" case is one the server must accept. Every check stays on.

The rules come from the server's own code, imported rather than restated: the robot-id format, durations and their
maxima, time zones, a valid geofence area. The rest relate values to each other or to now: a range runs forwards and
holds a bounded number of buckets, `window` excludes its deprecated `window_min`, a battery rule's margin keeps it
clearable, a reading has a location or a pose and a time near the server's clock, a webhook's host is valid IDNA,
and a cursor is only ever one the server issued (so positive cases send none; a forged one's 400 is covered by the
test suite). Only positive cases are changed: a negative case keeps the violation it was built around.
"""

from __future__ import annotations

import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import schemathesis
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.alerts.geofence import Geofence, Geometry, InvalidGeometry
from app.model.errors import FleetError
from app.model.reading import REFUSED_CATEGORIES, normalize_robot_id
from app.platform.timeranges import (
    MAX_DISTANCE_RANGE,
    MAX_STALE_AFTER,
    MAX_STATIONARY_WINDOW,
    MIN_TIME,
    duration_seconds,
    parse_duration,
    parse_zone,
)

FALLBACK_AREA = {"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]}
DURATION_MAXIMA = {"stale_after": MAX_STALE_AFTER, "window": MAX_STATIONARY_WINDOW}
BUCKETS_PER_RANGE = 100  # a range drawn for a bucketed query holds this many buckets (the server allows 10,000)
WIDEST_BUCKETED_RANGE = timedelta(days=3650)  # ... or spans at most ten years, for buckets of up to 99,999,999 s
LATEST_START = datetime(9000, 1, 1, tzinfo=UTC)  # a bounded range from here still ends before the year 9999
READING_SKEW = timedelta(seconds=30)  # well within the server's accepted future (FLEET_INGEST_MAX_FUTURE_S)
ACCEPTED_PAST = timedelta(days=29)  # within its accepted past (FLEET_INGEST_MAX_PAST_S, 30 days)


def _is_old_character(character: str) -> bool:
    # Assigned by Unicode 3.2 already: the server's Python may know an older Unicode than the fuzzer's, and it
    # refuses what it sees as unassigned.
    return unicodedata.ucd_3_2_0.category(character) != "Cn"


def _is_robot_id(text: str) -> bool:
    # Already NFC: the id the server stores is then the one sent, so paths and bodies name the same robot.
    return normalize_robot_id(text) == text == unicodedata.normalize("NFC", text)


schemathesis.openapi.format(
    "robot-id",
    st.text(
        st.characters(exclude_categories=sorted(REFUSED_CATEGORIES)).filter(_is_old_character), min_size=1, max_size=64
    ).filter(_is_robot_id),
)


@schemathesis.hook
def map_case(ctx: Any, case: Any) -> Any:
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return case
    if case.query:
        _fit_query(case.query, case.operation.path)
    if isinstance(case.body, dict):
        _fit_rule(case.body)
        _fit_reading(case.body)
        if case.operation.path == "/webhooks" and not str(case.body.get("url", "")).isascii():
            case.body["url"] = "https://hooks.example/fleet"  # a non-ASCII host must also be valid IDNA
    elif isinstance(case.body, list):
        for item in case.body:
            if isinstance(item, dict):
                _fit_reading(item)
    return case


def _fit_query(query: dict[str, Any], path: str) -> None:
    query.pop("cursor", None)
    if "window" in query:
        query.pop("window_min", None)
    for name, maximum in DURATION_MAXIMA.items():
        if name in query and not _fits(parse_duration, query[name], name, maximum):
            query[name] = "5m"
    if "tz" in query and not _fits(parse_zone, query["tz"]):
        query["tz"] = "UTC"
    since_text, until_text = query.get("since"), query.get("until")
    since, until = _instant(since_text), _instant(until_text)
    if (since_text is not None and since is None) or (until_text is not None and until is None):
        return  # a time the server cannot read: its 400 is what the case is about
    if since is not None and until is not None and until < since:
        since, until = until, since
    width = duration_seconds(query.get("bucket") or "")
    widest = MAX_DISTANCE_RANGE if path == "/fleet/distance" else None
    if width is not None:
        widest = min(timedelta(seconds=width * BUCKETS_PER_RANGE), WIDEST_BUCKETED_RANGE)
    if widest is not None:  # bucketed and distance ranges: bounded, and not wholly before 1970
        since = min(max(since or (until or datetime.now(UTC)) - widest, MIN_TIME), LATEST_START)
        if until is None or not since < until <= since + widest:
            until = since + widest
    if since is not None:
        query["since"] = since.isoformat()
    if until is not None:
        query["until"] = until.isoformat()


def _fit_rule(body: dict[str, Any]) -> None:
    condition = body.get("condition")
    if not isinstance(condition, dict):
        return
    kind = condition.get("kind")
    if kind == "geofence" and "geometry" in condition:
        try:
            Geofence(msgspec.convert(condition["geometry"], Geometry))
        except InvalidGeometry:
            condition["geometry"] = FALLBACK_AREA  # positions that are no area: drawn again as a plain square
    if kind == "battery" and isinstance(condition.get("below"), int | float):
        condition["margin"] = min(condition.get("margin", 5.0), 100.0 - condition["below"])
    if kind in ("offline", "stationary") and "after" in condition:
        seconds = duration_seconds(str(condition["after"]))
        if seconds is None or not 1 <= seconds <= 7 * 86_400:
            condition["after"] = "5m"


def _fit_reading(reading: dict[str, Any]) -> None:
    if "battery_level" not in reading:
        return  # not a reading
    if reading.get("location") is None and reading.get("pose") is None:
        # "A location, a pose or both": stated in the description only, as an anyOf on the object would cost
        # client generators their Reading model.
        reading["location"] = {"latitude": 0.0, "longitude": 0.0}
    now, stamp = datetime.now(UTC), reading.get("timestamp")
    if stamp is not None and not now - ACCEPTED_PAST < _reading_time(stamp) < now + READING_SKEW:
        # The server takes readings from the last 30 days to a minute ahead: the same form, near now.
        near = now - READING_SKEW
        if isinstance(stamp, str):
            reading["timestamp"] = near.isoformat()
        elif isinstance(stamp, dict):
            reading["timestamp"] = {"sec": int(near.timestamp()), "nanosec": 0}
        else:
            reading["timestamp"] = near.timestamp()
    if isinstance(reading.get("seq"), float):
        reading["seq"] = int(reading["seq"])  # JSON Schema's "integer" admits 1.0; the server wants 1, as documented


def _reading_time(stamp: Any) -> datetime:
    try:
        if isinstance(stamp, str):
            return _instant(stamp) or datetime.min.replace(tzinfo=UTC)
        if isinstance(stamp, dict):
            return datetime.fromtimestamp(stamp["sec"] + stamp["nanosec"] / 1e9, UTC)
        return datetime.fromtimestamp(stamp, UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return datetime.min.replace(tzinfo=UTC)


def _fits(check: Any, *args: Any) -> bool:
    try:
        check(*args)
    except FleetError:
        return False
    return True


def _instant(value: Any) -> datetime | None:
    try:
        instant = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return instant if instant is None or instant.tzinfo is not None else instant.replace(tzinfo=UTC)
