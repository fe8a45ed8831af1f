"""The MQTT conversation and the broker's accounts, without a broker: topics, problems, the password file's hash
in Mosquitto's own form, and which robot ids can be broker users."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import cast

import pytest

from app.auth.tokens import broker_hash
from app.model.errors import InvalidReading, StorageUnavailable
from app.model.payloads import FieldError
from app.mqtt.accounts import render_acl, render_passwords
from app.mqtt.connection import PINGRESP, PUBLISH, MqttConnection, encode_packet, encode_string, split_packets
from app.mqtt.messages import batch_of, encode_problem, fits_mqtt, robot_of, topic_for

# Made by `mosquitto_passwd -b -c pw robot-1 secret-token` (Mosquitto 2.0.11): the broker must accept our hashes.
MOSQUITTO_LINE = (
    "robot-1:$7$101$MJLzGspSWQ83zW/m$QHurtEKaMhEr1VLUq2rPN0jUmDjb0QSulkulS2YyWE2ihgmNoG6eZ8QHSX8B4xKDNIKElD8+GuY8BA9N"
    "YmDgCg=="
)


def test_the_broker_hash_is_mosquittos_own() -> None:
    hashed = MOSQUITTO_LINE.split(":", 1)[1]
    salt = base64.b64decode(hashed.split("$")[3])
    assert broker_hash("secret-token", salt) == hashed
    assert broker_hash("secret-token") != broker_hash("secret-token")  # a fresh salt each time


@pytest.mark.parametrize(
    ("topic", "robot_id"),
    [
        ("fleet/r1/telemetry", "r1"),
        ("fleet/r1/ack", None),
        ("fleet/a/b/telemetry", None),
        ("fleet//telemetry", None),
        ("other/r1/telemetry", None),
    ],
)
def test_only_a_robots_telemetry_topic_names_a_robot(topic: str, robot_id: str | None) -> None:
    assert robot_of(topic) == robot_id


def test_robot_ids_that_cannot_be_broker_users_are_left_out_of_the_accounts() -> None:
    assert fits_mqtt("amr-07") and fits_mqtt("café")
    assert not any(fits_mqtt(r) for r in ("site/7", "a+b", "a#", "a:b", "a b"))
    accounts = [("amr-07", "$7$h1"), ("site/7", "$7$h2"), ("fleet-service", "$7$h3")]
    lines = render_passwords("fleet-service", "s3cret", accounts).splitlines()
    assert [line.split(":")[0] for line in lines] == ["fleet-service", "amr-07"]
    assert lines == render_passwords("fleet-service", "s3cret", accounts).splitlines()  # same text: no rewrite
    assert "pattern write fleet/%u/telemetry" in render_acl("fleet-service").splitlines()


def test_problems_carry_their_batch_and_retry_after() -> None:
    errors = [FieldError(field="$[0].battery_level", message="too low", index=0)]
    invalid = json.loads(encode_problem(InvalidReading("1 problem", errors=errors), "b1"))
    assert (invalid["status"], invalid["type"], invalid["batch"]) == (422, "/problems/invalid-reading", "b1")
    assert "retry_after_s" not in invalid
    busy = json.loads(encode_problem(StorageUnavailable("queue full", retry_after_s=2), None))
    assert (busy["status"], busy["retry_after_s"], "batch" in busy) == (503, 2, False)
    assert topic_for("r1", "errors") == "fleet/r1/errors"
    assert batch_of(b'{"batch": "b7", "readings": 5}') == "b7" and batch_of(b"[1]") is None


def test_packets_are_split_whole_whatever_the_reads_cut_them_into() -> None:
    small = encode_packet(PUBLISH, encode_string("fleet/r1/telemetry") + b"{}")
    large = encode_packet(PUBLISH | 0x02, encode_string("fleet/r2/telemetry") + b"\x00\x07" + b"x" * 10_000)
    stream = small + large + bytes([PINGRESP, 0])
    assert large[1] & 0x80 and large[2] & 0x80 == 0  # a two-byte remaining length
    for cut in (1, 2, 3, len(small) + 1, len(small) + 2, len(small) + 3, len(stream) - 1):
        buffer, packets = bytearray(), []
        for piece in (stream[:cut], stream[cut:]):
            buffer += piece
            packets += split_packets(buffer)
        assert [kind for kind, _ in packets] == [PUBLISH, PUBLISH | 0x02, PINGRESP], cut
        assert packets[1][1].endswith(b"x" * 10_000) and not buffer


class FakeTransport:
    def __init__(self) -> None:
        self.paused, self.written = False, b""

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.written += data


async def test_past_its_cap_of_unanswered_messages_a_connection_stops_reading_until_answers_go_out() -> None:
    taken: list[int | None] = []
    connection = MqttConnection(lambda _, topic, payload, packet_id: taken.append(packet_id), max_unacked=4)
    transport = FakeTransport()
    connection.connection_made(cast(asyncio.Transport, transport))
    messages = b"".join(
        encode_packet(PUBLISH | 0x02, encode_string("fleet/r1/telemetry") + packet_id.to_bytes(2, "big") + b"{}")
        for packet_id in range(1, 5)
    )
    connection.data_received(messages)
    assert taken == [1, 2, 3, 4] and transport.paused  # the broker holds the rest
    connection.puback(1)
    assert transport.paused  # 3 unanswered: more than half the cap
    connection.puback(2)
    assert not transport.paused
    await asyncio.sleep(0)  # packets of one loop turn go out together
    assert transport.written == bytes([0x40, 2, 0, 1, 0x40, 2, 0, 2])
