"""The example of every response body in /docs, built from the response structs themselves so it cannot drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from app.alerts.geofence import GeoPolygon
from app.alerts.payloads import (
    AlertPage,
    BulkAcknowledged,
    CreatedWebhook,
    Delivery,
    DeliveryPage,
    RulePage,
    Webhook,
)
from app.alerts.rules import AlertRule, BatteryCondition, GeofenceCondition, NewRule
from app.model.alert import Alert
from app.model.payloads import (
    ActivityPage,
    Bucket,
    BucketSeries,
    CredentialInfo,
    DailyActivity,
    DatabaseJob,
    DistancePage,
    Health,
    HistoryPage,
    IngestResult,
    IssuedCredential,
    RobotDistance,
    RobotPage,
    RobotState,
    StationaryPage,
    StationaryRobot,
    Storage,
)
from app.model.reading import Location, ReadingArgs, StoredReading
from app.telemetry.fanout import StreamedReading

_AT = datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
_HERE = Location(latitude=37.1, longitude=-122.3)
_ARGS: ReadingArgs = (_AT, _HERE, 87.5, 24.6, "moving", 1041, 87.0, 1.4, None, 0.8, None, {"motor_temp_c": 41.5})
_READING = StoredReading(*_ARGS)
_STATE = RobotState(*_ARGS, "R2-D2", _AT - timedelta(days=30), _AT + timedelta(milliseconds=40), True, ["north"])
_CURSOR = "kqZyb2JvdHORpVIyLUQy"
_BUCKET = Bucket(
    _AT.replace(minute=0), 60, 86.9, 86.4, 87.5, 24.6, 24.5, 24.7, _HERE, {"moving": 0.75, "idle": 0.25}, "moving"
)
_EMPTY_BUCKET = Bucket(_AT.replace(minute=1), 0, None, None, None, None, None, None, None, {}, None)
_CREDENTIAL = CredentialInfo(
    7, "key", "ops dashboard", None, ["read", "stream"], None, "north", "flt_k_Ab3d", _AT, None, None
)

_SITE = GeoPolygon([[[-122.31, 37.09], [-122.29, 37.09], [-122.29, 37.11], [-122.31, 37.11], [-122.31, 37.09]]])
_RULE = AlertRule(3, "stay on site", GeofenceCondition("allowed", _SITE), None, "north", True, _AT, _AT)
_ALERT = Alert(
    41, 3, "stay on site", "geofence", "R2-D2", "acknowledged", "at 37.120000, -122.300000, outside its allowed area",
    _AT, _AT + timedelta(minutes=2), "ops dashboard", "sending someone", None, None, 2,
)  # fmt: skip
_WEBHOOK = Webhook(2, "https://ops.example.com/fleet-alerts", "on-call", _AT)
_DELIVERY = Delivery(90, 2, 41, "alert.opened", "pending", 3, _AT + timedelta(seconds=4), 503, "HTTP 503", _AT, None)

EXAMPLES: dict[str, Any] = {
    "NewRule": NewRule("battery low", BatteryCondition(20.0, 5.0), fleet_tag="north"),
    "AlertRule": _RULE,
    "RulePage": RulePage([_RULE], None),
    "Alert": _ALERT,
    "AlertPage": AlertPage([_ALERT], None),
    "BulkAcknowledged": BulkAcknowledged([_ALERT], [42]),
    "Webhook": _WEBHOOK,
    "CreatedWebhook": CreatedWebhook(2, _WEBHOOK.url, "on-call", _AT, "whsec_<shown once>"),
    "DeliveryPage": DeliveryPage([_DELIVERY], None),
    "IngestResult": IngestResult(accepted=2, duplicates=0),
    "HistoryPage": HistoryPage("R2-D2", [_READING], _CURSOR),
    "BucketSeries": BucketSeries("R2-D2", "1m", "UTC", _AT, _AT + timedelta(minutes=2), [_BUCKET, _EMPTY_BUCKET]),
    "RobotState": _STATE,
    "RobotPage": RobotPage([_STATE], _CURSOR),
    "StationaryPage": StationaryPage([StationaryRobot("R2-D2", 1.8, 60, _AT, _HERE)], None),
    "DistancePage": DistancePage([RobotDistance("R2-D2", 3600, 4123.7)], None),
    "ActivityPage": ActivityPage([DailyActivity("R2-D2", "2026-11-27", "UTC", {"moving": 6.5, "charging": 2.25})]),
    "Health": Health(
        "ok",
        "0.4.0",
        "up",
        "on",
        Storage(
            "timescale",
            "90d",
            "columnstore, chunks converted after 1 day",
            [DatabaseJob(1001, "refresh_minutes", True, _AT, "Success", _AT, 2880, 0, _AT + timedelta(seconds=30))],
        ),
    ),
    "CredentialInfo": _CREDENTIAL,
    "IssuedCredential": IssuedCredential(
        8, "robot", "R2-D2", "flt_r_<shown once>", "flt_r_Zq9x", _AT, robot_id="R2-D2", scopes=["ingest"]
    ),
    "StreamedReading": StreamedReading(*_ARGS, "R2-D2"),
}


def example_for(component: str) -> msgspec.Raw | None:
    """The example for a component schema as encoded JSON, or None if it has none. Raw, because Litestar drops
    null members of plain dicts when it writes the document, and an example must show the nulls a client gets."""
    example = EXAMPLES.get(component)
    return None if example is None else msgspec.Raw(msgspec.json.encode(example))
