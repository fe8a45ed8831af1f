"""What the alert, rule and webhook routes take and return, besides the alert and the rule themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.alerts.rules import AlertRule
from app.model.alert import Alert
from app.model.reading import NO_NUL

NextCursor = Annotated[str | None, Meta(description="Pass as `cursor` for the next page; null at the end.")]


class AlertPage(msgspec.Struct):
    alerts: list[Alert]
    next_cursor: NextCursor = None


class RulePage(msgspec.Struct):
    rules: list[AlertRule]
    next_cursor: NextCursor = None


class Acknowledgement(msgspec.Struct, forbid_unknown_fields=True):
    note: (
        Annotated[str, Meta(max_length=1000, pattern=NO_NUL, description="What the operator is doing about it.")] | None
    ) = None


# One transaction's worth: a storm's alerts are acknowledged a thousand at a time (the console pages through more).
MAX_BULK_ACKNOWLEDGE = 1000
AlertId = Annotated[int, Meta(ge=1, le=2**53 - 1)]


class BulkAcknowledgement(msgspec.Struct, forbid_unknown_fields=True):
    alert_ids: Annotated[
        list[AlertId],
        Meta(min_length=1, max_length=MAX_BULK_ACKNOWLEDGE, description="The alerts to acknowledge."),
    ]
    note: (
        Annotated[str, Meta(max_length=1000, pattern=NO_NUL, description="What the operator is doing about it.")] | None
    ) = None


class BulkAcknowledged(msgspec.Struct):
    acknowledged: Annotated[list[Alert], Meta(description="The alerts this call acknowledged, by id.")]
    unchanged: Annotated[
        list[int],
        Meta(
            description="The ids it did not: resolved or acknowledged already, unknown, or of a robot this key "
            "does not see."
        ),
    ]


class NewWebhook(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[
        str,
        Meta(
            min_length=8,
            max_length=2000,
            pattern=r"^https?://[^\x00-\x20\x7f]+$",  # no space or control character
            description="Where alert transitions are POSTed (http or https; redirects are not followed).",
            examples=["https://ops.example.com/fleet-alerts"],
        ),
    ]
    description: Annotated[str, Meta(max_length=200, pattern=NO_NUL)] = ""


class Webhook(msgspec.Struct):
    webhook_id: int
    url: str
    description: str
    created_at: datetime


class CreatedWebhook(Webhook):
    secret: Annotated[
        str, Meta(description="The signing secret (Standard Webhooks `whsec_...`): shown once, here only.")
    ]


class Delivery(msgspec.Struct):
    delivery_id: int
    webhook_id: int
    alert_id: int
    event: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: Annotated[datetime, Meta(description="When a pending delivery is next attempted.")]
    last_status: Annotated[int | None, Meta(description="The receiver's last HTTP status, if it answered.")]
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(msgspec.Struct):
    deliveries: list[Delivery]
    next_cursor: NextCursor = None
