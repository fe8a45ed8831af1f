"""The domain's one error taxonomy: every failure a client can be told about is a ``FleetError`` of a kind.

Only ``app.web.problems`` knows how a kind becomes an HTTP status and an RFC 9457 problem.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from app.model.payloads import FieldError


class ErrorKind(enum.Enum):
    MALFORMED_BODY = "malformed-json"
    INVALID_READING = "invalid-reading"
    TOO_MANY_READINGS = "too-many-readings"
    STORAGE_UNAVAILABLE = "storage-unavailable"
    UNKNOWN_ROBOT = "unknown-robot"
    BAD_PARAMETER = "bad-parameter"
    BAD_CURSOR = "bad-cursor"
    BAD_BUCKET = "bad-bucket-request"
    BAD_RANGE = "bad-range"
    BAD_ZONE = "bad-zone"
    OUT_OF_RANGE = "out-of-range"
    QUERY_TIMEOUT = "query-timeout"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate-limited"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    CONFLICT = "conflict"
    INVALID_RULE = "invalid-alert-rule"
    UNKNOWN_ALERT_RULE = "unknown-alert-rule"
    UNKNOWN_ALERT = "unknown-alert"
    UNKNOWN_WEBHOOK = "unknown-webhook"
    # What the HTTP layer itself refuses before any domain code runs, and what nobody expected.
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    BODY_TOO_LARGE = "body-too-large"
    INTERNAL = "internal-error"


class FleetError(Exception):
    """A failure the client is told about: its kind, a plain-words detail, and optionally which fields."""

    kind: ErrorKind

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        retry_after_s: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})
        if retry_after_s is not None:
            self.headers["Retry-After"] = str(retry_after_s)


class MalformedBody(FleetError):
    kind = ErrorKind.MALFORMED_BODY


class InvalidReading(FleetError):
    kind = ErrorKind.INVALID_READING


class TooManyReadings(FleetError):
    kind = ErrorKind.TOO_MANY_READINGS


class StorageUnavailable(FleetError):
    """The flush carrying a request failed or timed out. Its rows may or may not be stored; a retry is safe."""

    kind = ErrorKind.STORAGE_UNAVAILABLE


class UnknownRobot(FleetError):
    kind = ErrorKind.UNKNOWN_ROBOT

    def __init__(self, robot_id: str) -> None:
        super().__init__(f"no readings were ever stored for {robot_id!r}")


class BadParameter(FleetError):
    kind = ErrorKind.BAD_PARAMETER


class BadCursor(FleetError):
    kind = ErrorKind.BAD_CURSOR


class BadBucket(FleetError):
    kind = ErrorKind.BAD_BUCKET


class BadRange(FleetError):
    kind = ErrorKind.BAD_RANGE


class ExportTooLarge(BadRange):
    """The range holds more CSV than one export may."""


class BadZone(FleetError):
    kind = ErrorKind.BAD_ZONE


class OutOfRange(FleetError):
    kind = ErrorKind.OUT_OF_RANGE


class QueryTimeout(FleetError):
    kind = ErrorKind.QUERY_TIMEOUT


class Unauthenticated(FleetError):
    kind = ErrorKind.UNAUTHENTICATED


class Forbidden(FleetError):
    kind = ErrorKind.FORBIDDEN


class RateLimited(FleetError):
    kind = ErrorKind.RATE_LIMITED


class BodyTooLarge(FleetError):
    kind = ErrorKind.BODY_TOO_LARGE


class UnsupportedMediaType(FleetError):
    kind = ErrorKind.UNSUPPORTED_MEDIA_TYPE


class Conflict(FleetError):
    kind = ErrorKind.CONFLICT


class RulesFull(Conflict):
    """Another alert rule (or a larger geofence) would pass the configured bounds."""


class InvalidRule(FleetError):
    kind = ErrorKind.INVALID_RULE


class UnknownAlertRule(FleetError):
    kind = ErrorKind.UNKNOWN_ALERT_RULE


class UnknownAlert(FleetError):
    kind = ErrorKind.UNKNOWN_ALERT


class UnknownWebhook(FleetError):
    kind = ErrorKind.UNKNOWN_WEBHOOK


class ServiceFault(FleetError):
    """Not the client's doing: a fault of the service, logged where it happened."""

    kind = ErrorKind.INTERNAL
