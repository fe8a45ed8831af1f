"""An alert as the API, the live stream and webhooks show it, and the event announcing each of its transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

AlertState = Literal["active", "acknowledged", "resolved"]
EventType = Literal["alert.opened", "alert.acknowledged", "alert.resolved"]
EVENT_TYPES: tuple[EventType, ...] = ("alert.opened", "alert.acknowledged", "alert.resolved")


class Alert(msgspec.Struct, gc=False):
    alert_id: int
    rule_id: int | None  # None once its rule is deleted
    rule_name: str
    kind: str
    robot_id: str
    state: AlertState
    reason: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None
    resolved_at: datetime | None
    resolution: str | None
    # 1 when opened, one more at each transition: deliveries may arrive out of order, the highest is the newest.
    sequence: int


class AlertEvent(msgspec.Struct, gc=False):
    """The body of a webhook delivery, and of a NOTIFY between processes."""

    type: EventType
    alert: Alert


_encode = msgspec.json.Encoder().encode
_decode_event = msgspec.json.Decoder(AlertEvent).decode


def alert_from(record: Any) -> Alert:
    """An alert from a database record of ``sql.ALERT_COLUMNS``."""
    if record["resolved_at"] is not None:
        state: AlertState = "resolved"
    elif record["acknowledged_at"] is not None:
        state = "acknowledged"
    else:
        state = "active"
    return Alert(
        alert_id=record["alert_id"],
        rule_id=record["rule_id"],
        rule_name=record["rule_name"],
        kind=record["kind"],
        robot_id=record["robot_id"],
        state=state,
        reason=record["reason"],
        opened_at=record["opened_at"],
        acknowledged_at=record["acknowledged_at"],
        acknowledged_by=record["acknowledged_by"],
        note=record["note"],
        resolved_at=record["resolved_at"],
        resolution=record["resolution"],
        sequence=record["sequence"],
    )


def encode_event(event_type: EventType, record: Any) -> str:
    return _encode(AlertEvent(event_type, alert_from(record))).decode()


# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more, and the refusal aborts the transaction that holds
# the transition. A webhook's body is stored whole; the notice between processes is kept under this.
NOTICE_MAX_BYTES = 7000
# Shortened in a notice when it would not fit, longest allowance first: with at most 200 characters each (6 bytes
# apiece at worst, JSON-escaped), the four fit in 4.8 kB beside a 64-character robot id and the fixed fields.
_FREE_TEXT = ("note", "reason", "rule_name", "acknowledged_by")
_SHORTENED_CHARS = (200, 20)


def encode_notice(event_type: EventType, record: Any) -> str:
    """The event as a NOTIFY between processes carries it: whole, or with its free text shortened (ending in …)
    so that no alert, whatever its names and note, can fail the transaction that announces it."""
    event = AlertEvent(event_type, alert_from(record))
    body = _encode(event)
    for limit in _SHORTENED_CHARS:
        if len(body) < NOTICE_MAX_BYTES:
            break
        changes = {
            name: value[: limit - 1] + "…"
            for name in _FREE_TEXT
            if isinstance(value := getattr(event.alert, name), str) and len(value) > limit
        }
        body = _encode(AlertEvent(event_type, msgspec.structs.replace(event.alert, **changes)))
    return body.decode()


def decode_event(payload: str) -> AlertEvent:
    return _decode_event(payload)


def encode_alert(alert: Alert) -> bytes:
    return _encode(alert)
