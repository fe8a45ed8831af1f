"""Rule evaluation without a database: thresholds with hysteresis, statuses, fields, and scope precedence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from app.alerts.evaluation import RuleSet, compile_rule
from app.alerts.rules import AlertRule, decode_rule
from app.model.errors import InvalidRule
from app.model.reading import Reading, Row, encode_fields, to_row

AT = datetime(2026, 11, 28, tzinfo=UTC)


def rule(rule_id: int, condition: dict[str, Any], **scope: Any) -> AlertRule:
    body = {"rule_id": rule_id, "name": f"r{rule_id}", "condition": condition, "enabled": True}
    body |= {"robot_id": None, "fleet_tag": None, "created_at": AT, "updated_at": AT, **scope}
    return msgspec.convert(body, AlertRule)


def row(robot_id: str = "r", **fields: Any) -> Row:
    values = {"robot_id": robot_id, "battery_level": 50.0, "location": {"latitude": 1.0, "longitude": 2.0}, **fields}
    reading = msgspec.convert(values, Reading)
    return to_row(reading, AT, None if reading.fields is None else encode_fields(reading.fields))


def verdicts(condition: dict[str, Any], rows: list[Row]) -> list[bool | None]:
    check = compile_rule(rule(1, condition)).check
    assert check is not None
    return [check(r)[0] for r in rows]


def test_battery_hysteresis() -> None:
    levels = [50, 20, 19.9, 12, 20, 24.9, 25, 80]
    assert verdicts({"kind": "battery", "below": 20, "margin": 5}, [row(battery_level=v) for v in levels]) == [
        False, None, True, True, None, None, False, False
    ]  # fmt: skip


def test_field_threshold_above_and_missing() -> None:
    rows = [row(fields={"t": v}) for v in (81, 80, 76, 75)] + [row(fields={"t": True}), row(fields={"x": 1}), row()]
    assert verdicts({"kind": "field", "field": "t", "above": 80, "margin": 5}, rows) == [
        True, None, None, False, None, None, None
    ]  # fmt: skip


def test_status_set_and_unknown() -> None:
    rows = [row(status="error"), row(status="charging"), row(status="idle"), row()]
    assert verdicts({"kind": "status", "statuses": ["error", "charging"]}, rows) == [True, True, False, None]


def test_most_specific_rules_win_per_kind() -> None:
    rules = RuleSet(
        [
            compile_rule(rule(1, {"kind": "battery", "below": 10})),
            compile_rule(rule(2, {"kind": "battery", "below": 20}, fleet_tag="north")),
            compile_rule(rule(3, {"kind": "battery", "below": 30}, robot_id="a")),
            compile_rule(rule(4, {"kind": "status"})),
            compile_rule(rule(5, {"kind": "battery", "below": 40}, robot_id="other")),
        ]
    )
    assert sorted(r.rule_id for r in rules.applicable("a", ("north",))) == [3, 4]
    assert sorted(r.rule_id for r in rules.applicable("b", ("north",))) == [2, 4]
    assert sorted(r.rule_id for r in rules.applicable("c", ())) == [1, 4]


@pytest.mark.parametrize(
    "condition",
    [
        {"kind": "battery", "below": 0},
        {"kind": "stationary", "after": "8d"},
        {"kind": "field", "field": "t", "above": 1, "below": 2},
    ],
)
def test_rules_that_cannot_work_are_refused(condition: dict[str, Any]) -> None:
    with pytest.raises(InvalidRule):
        decode_rule(msgspec.json.encode({"name": "x", "condition": condition}))
