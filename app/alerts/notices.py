"""Alert transitions announced by any process (a NOTIFY each), passed to this process's live subscribers."""

from __future__ import annotations

from app.model.alert import decode_event, encode_alert
from app.telemetry.fanout import Broadcaster


def relay_alert_notice(broadcaster: Broadcaster, payload: str) -> None:
    """An alert transition announced by any process (NOTIFY): to this process's live subscribers."""
    event = decode_event(payload)
    broadcaster.publish_alert(event.type, event.alert.robot_id, encode_alert(event.alert))
