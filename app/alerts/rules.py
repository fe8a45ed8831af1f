"""Alert rules: the conditions an operator can set (one struct per kind), their scope, and their validation.

A rule's ``condition`` is a tagged union on ``kind``; each kind says when an alert opens and when it clears.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from app.alerts.geofence import Area, Geofence, Geometry, InvalidGeometry, count_positions
from app.auth.visibility import visible_robot_tags
from app.model.errors import InvalidRule, MalformedBody
from app.model.payloads import FieldError
from app.model.principal import Principal, Tag
from app.model.reading import NO_NUL, ROBOT_ID_RULE, STATUSES, FieldKey, RobotId, Status, normalize_robot_id
from app.platform.pool import Pool
from app.platform.timeranges import DURATION_PATTERN, duration_seconds
from app.telemetry.decoding import field_error

Duration = Annotated[
    str, Meta(pattern=DURATION_PATTERN, description="A duration such as 30s, 5m or 1h.", examples=["5m"])
]
MIN_DURATION_S = 1
MAX_DURATION_S = 7 * 86_400


class BatteryCondition(msgspec.Struct, tag="battery", tag_field="kind", forbid_unknown_fields=True):
    """Open below ``below`` percent; clear only above ``below + margin`` (hysteresis), so a level hovering at the
    threshold does not open and close an alert at every reading."""

    below: Annotated[float, Meta(gt=0.0, le=100.0, description="Percent.")]
    margin: Annotated[float, Meta(ge=0.0, le=50.0, description="Percent above `below` to clear.")] = 5.0


class OfflineCondition(msgspec.Struct, tag="offline", tag_field="kind", forbid_unknown_fields=True):
    """Open when no reading was *received* for ``after`` (by the server's clock); clear at the next reading."""

    after: Duration


class StatusCondition(msgspec.Struct, tag="status", tag_field="kind", forbid_unknown_fields=True):
    """Open while the robot's latest status is one of ``statuses``."""

    statuses: Annotated[list[Status], Meta(min_length=1, max_length=len(STATUSES))] = msgspec.field(
        default_factory=lambda: ["error"]
    )


class GeofenceCondition(msgspec.Struct, tag="geofence", tag_field="kind", forbid_unknown_fields=True):
    """``allowed``: open while the robot is outside the area; ``forbidden``: while it is inside. The edge counts
    as inside. Readings with no location (a local pose only) leave the alert as it is."""

    area: Annotated[Area, Meta(description="allowed: stay inside; forbidden: stay out.")]
    geometry: Geometry


class StationaryCondition(msgspec.Struct, tag="stationary", tag_field="kind", forbid_unknown_fields=True):
    """Open when the robot's status says `moving` but it has stayed within ``within_m`` metres for ``after``."""

    after: Duration
    within_m: Annotated[float, Meta(gt=0.0, le=10_000.0, description="Metres.")] = 5.0


class FieldCondition(msgspec.Struct, tag="field", tag_field="kind", forbid_unknown_fields=True):
    """A threshold on one of the reading's numeric ``fields``: open above ``above`` (or below ``below``); clear
    only once back past the threshold by ``margin``. Readings without the field leave the alert as it is."""

    field: FieldKey
    above: float | None = None
    below: float | None = None
    margin: Annotated[float, Meta(ge=0.0)] = 0.0


Condition = (
    BatteryCondition | OfflineCondition | StatusCondition | GeofenceCondition | StationaryCondition | FieldCondition
)
Kind = Literal["battery", "offline", "status", "geofence", "stationary", "field"]
KINDS: tuple[Kind, ...] = ("battery", "offline", "status", "geofence", "stationary", "field")
# Evaluated from each commit's readings; the others on a timer, since their trigger is the absence of change.
READING_KINDS = frozenset({"battery", "status", "geofence", "field"})


class NewRule(msgspec.Struct, forbid_unknown_fields=True):
    """A rule: its condition, and its scope: one robot (``robot_id``), robots with a tag (``fleet_tag``), or,
    with neither, the whole fleet. For each robot and kind only the most specific rules apply: a robot's own
    rules override its tags', which override the fleet's."""

    name: Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
    condition: Condition
    robot_id: RobotId | None = None
    fleet_tag: Tag | None = None
    enabled: bool = True


def _both(first: str, first_type: str, second: str, second_type: str) -> dict[str, object]:
    """JSON Schema for "these two fields are both given (not null)"."""
    return {"required": [first, second], "properties": {first: {"type": first_type}, second: {"type": second_type}}}


# What check_rule enforces beyond the types, for the OpenAPI document, by component: a rule names a robot or a
# tag, not both; a field condition has one threshold.
RULE_SCHEMA_RULES: dict[str, dict[str, object]] = {
    "NewRule": {"not": _both("robot_id", "string", "fleet_tag", "string")},
    "FieldCondition": {
        "not": _both("above", "number", "below", "number"),
        "anyOf": [
            {"required": ["above"], "properties": {"above": {"type": "number"}}},
            {"required": ["below"], "properties": {"below": {"type": "number"}}},
        ],
    },
}


class AlertRule(msgspec.Struct):
    rule_id: int
    name: str
    condition: Condition
    robot_id: str | None
    fleet_tag: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


def _invalid(field: str, message: str) -> InvalidRule:
    return InvalidRule(message, errors=[FieldError(field=f"$.{field}", message=message)])


_decode_rule = msgspec.json.Decoder(NewRule).decode


def decode_rule(body: bytes) -> NewRule:
    """A rule from a request body: 422 (InvalidRule) naming the field at fault, 400 if it is not JSON at all."""
    try:
        rule = _decode_rule(body)
    except msgspec.ValidationError as exc:
        error = field_error(exc, None)
        raise InvalidRule(error.message, errors=[error]) from None
    except msgspec.DecodeError as exc:
        raise MalformedBody("the body is not JSON", errors=[field_error(exc, None)]) from None
    except (UnicodeDecodeError, RecursionError):
        raise MalformedBody("the body is not JSON") from None
    check_rule(rule)
    return rule


def check_rule(rule: NewRule) -> None:
    """What the types cannot say: one scope at most, durations in range, a usable threshold and area."""
    if rule.robot_id is not None and rule.fleet_tag is not None:
        raise _invalid("robot_id", "give robot_id or fleet_tag, not both")
    if rule.robot_id is not None:
        robot_id = normalize_robot_id(rule.robot_id)
        if robot_id is None:
            raise _invalid("robot_id", ROBOT_ID_RULE)
        rule.robot_id = robot_id
    condition = rule.condition
    if isinstance(condition, OfflineCondition | StationaryCondition):
        seconds = duration_seconds(condition.after)
        if seconds is None or not MIN_DURATION_S <= seconds <= MAX_DURATION_S:
            raise _invalid("condition.after", "after must be from 1s to 7d")
    if isinstance(condition, FieldCondition) and (condition.above is None) == (condition.below is None):
        raise _invalid("condition", "give exactly one of above or below")
    if isinstance(condition, FieldCondition) and "\x00" in condition.field:
        raise _invalid("condition.field", "a field name may not contain U+0000 (NUL)")
    if isinstance(condition, BatteryCondition) and condition.below + condition.margin > 100.0:
        raise _invalid("condition.margin", "below + margin must be at most 100, or the alert could never clear")
    if isinstance(condition, GeofenceCondition):
        try:
            Geofence(condition.geometry)
        except InvalidGeometry as exc:
            raise _invalid("condition.geometry", str(exc)) from None


def kind_of(condition: Condition) -> Kind:
    return condition.__struct_config__.tag  # type: ignore[return-value]


def rule_from(record: Any) -> AlertRule:
    """A rule from a database record of ``sql.RULE_COLUMNS`` (its condition stored as JSON text)."""
    values = dict(record)
    values["condition"] = msgspec.json.decode(values["condition"])
    return msgspec.convert(values, AlertRule)


def rule_values(rule: NewRule) -> tuple[str, Kind, str | None, str | None, str, bool, int]:
    """What ``db.alerts`` stores of a rule: name, kind, robot_id, fleet_tag, condition as JSON, enabled, and its
    geofence's positions (0 for other kinds)."""
    condition = msgspec.json.encode(rule.condition).decode()
    positions = count_positions(rule.condition.geometry) if isinstance(rule.condition, GeofenceCondition) else 0
    return rule.name, kind_of(rule.condition), rule.robot_id, rule.fleet_tag, condition, rule.enabled, positions


async def visible_rules(pool: Pool, principal: Principal, rules: list[AlertRule]) -> list[AlertRule]:
    """The rules a principal may see: all, for one that sees the whole fleet; else the fleet-wide rules (they watch
    its robots too) and those of robots it sees or of tags one of them carries."""
    if not principal.limited:
        return rules
    visible = await visible_robot_tags(pool, principal)
    seen_tags = {tag for robot_tags in visible.values() for tag in robot_tags}
    return [
        rule
        for rule in rules
        if (rule.robot_id is None and rule.fleet_tag is None)
        or (rule.robot_id is not None and rule.robot_id in visible)
        or (rule.fleet_tag is not None and rule.fleet_tag in seen_tags)
    ]
