"""Rule evaluation, pure: which rules apply to a robot, and whether each one's condition holds for its state.

A check answers True (the condition holds: an alert should be open), False (it is clear: an open alert should
resolve) or None (no decision: inside a hysteresis band, or the reading lacks the value), with a reason in words.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple

import msgspec

from app.alerts.geofence import Geofence
from app.alerts.rules import (
    AlertRule,
    BatteryCondition,
    FieldCondition,
    GeofenceCondition,
    Kind,
    OfflineCondition,
    StationaryCondition,
    StatusCondition,
    kind_of,
)
from app.model.reading import Row
from app.platform.timeranges import duration_seconds

EARTH_RADIUS_M = 6_371_000.0

Verdict = tuple[bool | None, str]
ReadingCheck = Callable[[Row], Verdict]
_decode_fields = msgspec.json.Decoder(dict[str, Any]).decode
_UNDECIDED: Verdict = (None, "")

# Positions in a Row (app.model.reading.to_row): id, time, latitude, longitude, battery_level, ..., status, ...
_LATITUDE: Final = 2
_LONGITUDE: Final = 3
_BATTERY: Final = 4
_STATUS: Final = 6
_FIELDS: Final = 16


class Anchor(NamedTuple):
    """Where a robot was last seen to move more than a stationary rule's radius, and since when (server time)."""

    latitude: float
    longitude: float
    since: datetime


class RobotSnapshot(NamedTuple):
    """What the timer-driven rules look at: a robot's tags, when its latest reading arrived, and its status."""

    robot_id: str
    tags: list[str]
    received_at: datetime
    status: str | None


class LatestRow(NamedTuple):
    """A robot's latest state as the reading-driven rules take it: the reading's row, the robot's tags, and when
    the server received it."""

    row: Row
    tags: list[str]
    received_at: datetime


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle metres; the same formula as the database's haversine_m (migrations/009, which replaced 003)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to evaluate: its reading check (reading kinds) or its delay (offline, stationary)."""

    rule_id: int
    name: str
    kind: Kind
    robot_id: str | None
    fleet_tag: str | None
    check: ReadingCheck | None = None
    after_s: float = 0.0
    within_m: float = 0.0


def compile_rule(rule: AlertRule) -> CompiledRule:
    condition = rule.condition
    check, after_s, within_m = None, 0.0, 0.0
    if isinstance(condition, OfflineCondition | StationaryCondition):
        after_s = float(duration_seconds(condition.after) or 0)
        if isinstance(condition, StationaryCondition):
            within_m = condition.within_m
    else:
        check = _reading_check(condition)
    kind = kind_of(condition)
    return CompiledRule(rule.rule_id, rule.name, kind, rule.robot_id, rule.fleet_tag, check, after_s, within_m)


def _reading_check(condition: BatteryCondition | StatusCondition | GeofenceCondition | FieldCondition) -> ReadingCheck:
    if isinstance(condition, BatteryCondition):
        return _threshold_check("battery", None, condition.below, condition.margin, lambda row: row[_BATTERY], "%")
    if isinstance(condition, StatusCondition):
        statuses = frozenset(condition.statuses)

        def check_status(row: Row) -> Verdict:
            status = row[_STATUS]
            if status is None:
                return _UNDECIDED
            return status in statuses, f"status is {status}"

        return check_status
    if isinstance(condition, GeofenceCondition):
        fence, allowed = Geofence(condition.geometry), condition.area == "allowed"

        def check_geofence(row: Row) -> Verdict:
            latitude, longitude = row[_LATITUDE], row[_LONGITUDE]
            if latitude is None or longitude is None:
                return _UNDECIDED
            inside = fence.covers(latitude, longitude)
            where = f"at {latitude:.6f}, {longitude:.6f}"
            if allowed:
                return not inside, f"{where}, {'inside' if inside else 'outside'} its allowed area"
            return inside, f"{where}, {'inside' if inside else 'outside'} a forbidden area"

        return check_geofence
    name = condition.field
    return _threshold_check(name, condition.above, condition.below, condition.margin, _field_value(name), "")


def _field_value(name: str) -> Callable[[Row], float | None]:
    def value(row: Row) -> float | None:
        fields = row[_FIELDS]
        if fields is None:
            return None
        found = _decode_fields(fields).get(name)
        # bool is an int in Python, but true/false is not a measurement
        return float(found) if isinstance(found, int | float) and not isinstance(found, bool) else None

    return value


def _threshold_check(
    name: str,
    above: float | None,
    below: float | None,
    margin: float,
    value_of: Callable[[Row], float | None],
    unit: str,
) -> ReadingCheck:
    """Opens past the threshold; clears only once back past it by ``margin`` (hysteresis)."""

    def check(row: Row) -> Verdict:
        value = value_of(row)
        if value is None:
            return _UNDECIDED
        if below is not None:
            if value < below:
                return True, f"{name} {value:g}{unit} is below {below:g}{unit}"
            return (False, f"{name} {value:g}{unit}") if value >= below + margin else _UNDECIDED
        assert above is not None
        if value > above:
            return True, f"{name} {value:g}{unit} is above {above:g}{unit}"
        return (False, f"{name} {value:g}{unit}") if value <= above - margin else _UNDECIDED

    return check


@dataclass
class RuleSet:
    """The enabled rules, indexed by scope; ``applicable`` picks each kind's most specific ones for a robot."""

    rules: Sequence[CompiledRule]
    _cache: dict[tuple[str, tuple[str, ...]], tuple[CompiledRule, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {rule.rule_id: rule for rule in self.rules}
        self.reading_driven = any(rule.check is not None for rule in self.rules)
        self.stationary_radii = sorted({rule.within_m for rule in self.rules if rule.kind == "stationary"})

    def applicable(self, robot_id: str, tags: Sequence[str]) -> tuple[CompiledRule, ...]:
        key = (robot_id, tuple(tags))
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = tuple(_most_specific(self.rules, robot_id, tags))
        return found


def _most_specific(rules: Iterable[CompiledRule], robot_id: str, tags: Sequence[str]) -> list[CompiledRule]:
    """Per kind: the robot's own rules if any, else its tags' rules if any, else the fleet's."""
    by_kind: dict[str, tuple[int, list[CompiledRule]]] = {}
    for rule in rules:
        if rule.robot_id is not None:
            rank = 2 if rule.robot_id == robot_id else -1
        elif rule.fleet_tag is not None:
            rank = 1 if rule.fleet_tag in tags else -1
        else:
            rank = 0
        if rank < 0:
            continue
        best = by_kind.get(rule.kind)
        if best is None or rank > best[0]:
            by_kind[rule.kind] = (rank, [rule])
        elif rank == best[0]:
            best[1].append(rule)
    return [rule for _, chosen in by_kind.values() for rule in chosen]
