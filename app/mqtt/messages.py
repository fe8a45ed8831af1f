"""The MQTT conversation with a robot: its topics, the message it publishes, and the ack or problem it gets back.

Pure (no I/O). A robot publishes ``{"batch": "<its id for the message>", "readings": <what POST /telemetry
takes>}`` on ``fleet/<robot_id>/telemetry`` and keeps it until the service answers on ``fleet/<robot_id>/ack``
(stored: safe to forget) or ``fleet/<robot_id>/errors`` (an RFC 9457 problem, with ``batch``).
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from app.model.errors import FleetError, MalformedBody
from app.model.payloads import FieldError
from app.platform.problems import problem_of

TOPIC_ROOT: Final = "fleet"
TELEMETRY: Final = "telemetry"
ACK: Final = "ack"
ERRORS: Final = "errors"
# Every process of the service takes a share of the robots' messages (MQTT 5 shared subscriptions, which
# Mosquitto also offers to 3.1.1 clients): a message goes to one of them.
SHARED_SUBSCRIPTION: Final = f"$share/ingest/{TOPIC_ROOT}/+/{TELEMETRY}"
# Characters a robot id must not hold to be an MQTT user and a topic level: the level separator, the wildcards
# (Mosquitto refuses them in an ACL pattern's %u), the password file's separator, and white space (the ACL file's).
UNFIT_FOR_MQTT: Final = frozenset("/+#:") | frozenset(" \t\n\r\v\f\u0085\u2028\u2029")

BatchId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class TelemetryMessage(msgspec.Struct, forbid_unknown_fields=True):
    batch: BatchId
    readings: msgspec.Raw  # decoded and checked exactly as a POSTed body (app.telemetry.decoding)


class Ack(msgspec.Struct):
    """Sent on the robot's ack topic after the batch's readings are committed: the robot may forget them."""

    batch: str
    accepted: int
    duplicates: int


class ProblemMessage(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem on the robot's errors topic, with the batch it answers (None: unreadable message)."""

    status: int
    title: str
    detail: str
    type: str
    batch: str | None = None
    errors: list[FieldError] | None = None
    retry_after_s: int | None = None


_decode_message = msgspec.json.Decoder(TelemetryMessage).decode
_encode = msgspec.json.Encoder().encode


def fits_mqtt(robot_id: str) -> bool:
    """Whether the robot id can be a broker user name and one topic level."""
    return not UNFIT_FOR_MQTT.intersection(robot_id)


def topic_for(robot_id: str, kind: str) -> str:
    return f"{TOPIC_ROOT}/{robot_id}/{kind}"


def robot_of(topic: str) -> str | None:
    """The robot a telemetry topic belongs to, or None if it is not one."""
    root, _, rest = topic.partition("/")
    robot_id, _, kind = rest.rpartition("/")
    if root != TOPIC_ROOT or kind != TELEMETRY or not robot_id or "/" in robot_id:
        return None
    return robot_id


def decode_message(payload: bytes) -> TelemetryMessage:
    try:
        return _decode_message(payload)
    except msgspec.DecodeError as exc:
        raise MalformedBody(f"the message is not a telemetry message: {exc}") from None


def batch_of(payload: bytes) -> str | None:
    """The batch id of a message that could not be decoded, if it is there at all, so a problem can name it."""
    try:
        found = msgspec.json.decode(payload, type=dict[str, object]).get("batch")
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return found if isinstance(found, str) and len(found) <= 64 else None


def encode_ack(batch: str, accepted: int, duplicates: int) -> bytes:
    return _encode(Ack(batch, accepted, duplicates))


def encode_problem(exc: FleetError, batch: str | None) -> bytes:
    problem = problem_of(exc.kind, exc.detail, exc.errors)
    retry_after = exc.headers.get("Retry-After")
    return _encode(
        ProblemMessage(
            problem.status,
            problem.title,
            problem.detail,
            problem.type,
            batch,
            problem.errors,
            int(retry_after) if retry_after else None,
        )
    )
