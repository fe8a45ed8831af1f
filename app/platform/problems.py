"""Each error kind's RFC 9457 problem: its status, title and type, the one mapping every transport answers with
(HTTP in app.web.problems, MQTT in app.mqtt)."""

from __future__ import annotations

from typing import NamedTuple

from app.model.errors import ErrorKind
from app.model.payloads import FieldError, Problem

# Problem types are served by the API itself (GET /problems/{type}): a relative reference, resolved against the
# request's URL as RFC 9457 allows, so it works behind any host name and offline.
PROBLEM_BASE = "/problems/"


class ProblemSpec(NamedTuple):
    status: int
    title: str
    meaning: str  # for /docs: when a route answers with it


PROBLEMS: dict[ErrorKind, ProblemSpec] = {
    ErrorKind.MALFORMED_BODY: ProblemSpec(400, "Malformed JSON", "The body is not JSON"),
    ErrorKind.BAD_PARAMETER: ProblemSpec(400, "Bad parameter", "A query or path parameter is not valid"),
    ErrorKind.BAD_CURSOR: ProblemSpec(400, "Bad cursor", "The cursor is not one this API issued"),
    ErrorKind.BAD_BUCKET: ProblemSpec(400, "Bad bucket request", "Bad bucket width, or too many buckets"),
    ErrorKind.BAD_RANGE: ProblemSpec(400, "Bad range", "The time range is reversed or too long"),
    ErrorKind.BAD_ZONE: ProblemSpec(400, "Bad time zone", "Not an IANA time zone name"),
    ErrorKind.OUT_OF_RANGE: ProblemSpec(400, "Value out of range", "A value too extreme to compute with"),
    ErrorKind.UNAUTHENTICATED: ProblemSpec(401, "Unauthenticated", "A missing or bad credential"),
    ErrorKind.FORBIDDEN: ProblemSpec(403, "Forbidden", "The credential does not allow this"),
    ErrorKind.UNKNOWN_ROBOT: ProblemSpec(404, "Unknown robot", "No readings were ever stored for this robot"),
    ErrorKind.NOT_FOUND: ProblemSpec(404, "Not found", "No such route"),
    ErrorKind.METHOD_NOT_ALLOWED: ProblemSpec(405, "Method not allowed", "The route does not take this method"),
    ErrorKind.TOO_MANY_READINGS: ProblemSpec(413, "Too many readings", "More readings than one request may carry"),
    ErrorKind.BODY_TOO_LARGE: ProblemSpec(413, "Body too large", "More bytes than one request may carry"),
    ErrorKind.INVALID_READING: ProblemSpec(
        422, "Invalid reading", "Invalid readings; each bad one is listed with its index and field"
    ),
    ErrorKind.CONFLICT: ProblemSpec(409, "Conflict", "The resource is not in a state that allows this"),
    ErrorKind.INVALID_RULE: ProblemSpec(
        422, "Invalid alert rule", "The alert rule is invalid; each problem is listed with its field"
    ),
    ErrorKind.UNKNOWN_ALERT_RULE: ProblemSpec(404, "Unknown alert rule", "No alert rule has this id"),
    ErrorKind.UNKNOWN_ALERT: ProblemSpec(404, "Unknown alert", "No alert with this id is visible to this credential"),
    ErrorKind.UNKNOWN_WEBHOOK: ProblemSpec(404, "Unknown webhook", "No webhook has this id"),
    ErrorKind.UNSUPPORTED_MEDIA_TYPE: ProblemSpec(415, "Unsupported media type", "The body must be application/json"),
    ErrorKind.RATE_LIMITED: ProblemSpec(429, "Too many requests", "Slow down; retry after Retry-After seconds"),
    ErrorKind.INTERNAL: ProblemSpec(500, "Internal error", "A fault of the service, logged with its request"),
    ErrorKind.STORAGE_UNAVAILABLE: ProblemSpec(
        503, "Storage unavailable", "Storage unavailable; retry after Retry-After seconds"
    ),
    ErrorKind.QUERY_TIMEOUT: ProblemSpec(503, "Query timed out", "The query ran too long; narrow it or retry later"),
}


def problem_type(kind: ErrorKind) -> str:
    return PROBLEM_BASE + kind.value


def problem_of(kind: ErrorKind, detail: str, errors: list[FieldError] | None = None) -> Problem:
    spec = PROBLEMS[kind]
    return Problem(status=spec.status, title=spec.title, detail=detail, type=problem_type(kind), errors=errors or None)
