"""An alert's notice between processes always fits PostgreSQL's NOTIFY, however long its free text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.model.alert import NOTICE_MAX_BYTES, decode_event, encode_event, encode_notice


def record(**text: str) -> dict[str, Any]:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    values: dict[str, Any] = {
        "alert_id": 1,
        "rule_id": 2,
        "rule_name": "battery",
        "kind": "battery",
        "robot_id": "R1",
        "reason": "battery 9 % < 10 %",
        "opened_at": now,
        "acknowledged_at": now,
        "acknowledged_by": "ops",
        "note": "on my way",
        "resolved_at": None,
        "resolution": None,
        "sequence": 2,
    }
    return values | text


def test_a_notice_is_the_event_when_it_fits() -> None:
    assert encode_notice("alert.acknowledged", record()) == encode_event("alert.acknowledged", record())


def test_the_longest_text_is_shortened_to_fit() -> None:
    reason = "\x05" * 64 + " 2 is above 1"  # a field rule's reason names the field
    robot_id = "\U00013000" * 64  # 4 bytes each in UTF-8
    worst = record(
        rule_name="\x01" * 100, note="\x02" * 1000, acknowledged_by="\x03" * 100, reason=reason, robot_id=robot_id
    )
    assert len(encode_event("alert.acknowledged", worst).encode()) > 8000  # what PostgreSQL refused
    notice = encode_notice("alert.acknowledged", worst)
    assert len(notice.encode()) < NOTICE_MAX_BYTES
    alert = decode_event(notice).alert
    assert alert.note is not None and alert.note.endswith("…") and alert.note.startswith("\x02" * 100)
    assert (alert.alert_id, alert.robot_id, alert.sequence) == (1, robot_id, 2)  # identity is never shortened
