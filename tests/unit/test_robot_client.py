"""The robot client without a network: the outbox keeps readings across a reopen until acked, answers are sorted
into forget / retry / set aside, retries wait at least the service's Retry-After, and a too-large batch is split."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from fleet_robot import Acked, Outbox, Refused, Retry, RobotClient
from fleet_robot.transports import Done, Result, problem_result, result_of


def test_the_outbox_keeps_readings_and_its_count_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    assert outbox.append([b'{"a":1}', b'{"a":2}', b'{"a":3}']) == [1, 2, 3]
    outbox.remove([1])
    outbox.bury([2], '{"status":422}')
    outbox.close()
    reopened = Outbox(path)
    assert reopened.produced == 3 and reopened.pending() == 1
    assert reopened.peek(10) == [(3, b'{"a":3}')]
    assert reopened.peek(10, after=3) == []
    assert reopened.dead() == [(2, b'{"a":2}', '{"status":422}')]
    reopened.remove([3])
    assert reopened.append([b"{}"]) == [4]  # numbers never go back, even once the outbox is empty


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "expected"),
    [
        (200, b'{"accepted":2,"duplicates":1}', None, Acked(2, 1)),
        (503, b"{}", "3", Retry("HTTP 503", 3.0)),
        (429, b"{}", "1", Retry("HTTP 429", 1.0)),
        (401, b"{}", None, Retry("HTTP 401", None)),  # not the readings' fault: keep them
        (502, b"<html>", None, Retry("HTTP 502", None)),
        (
            422,
            b'{"status":422,"type":"/problems/invalid-reading"}',
            None,
            Refused(422, {"status": 422, "type": "/problems/invalid-reading"}),
        ),
        (400, b"not json", None, Refused(400, {"status": 400, "detail": "not json"})),
    ],
)
def test_http_answers_are_sorted_into_forget_retry_or_refuse(
    status: int, body: bytes, retry_after: str | None, expected: Result
) -> None:
    assert result_of(status, body, retry_after) == expected


def test_mqtt_problems_with_a_retry_after_are_retried_the_rest_refused() -> None:
    assert isinstance(problem_result({"status": 503, "retry_after_s": 1}), Retry)
    assert isinstance(problem_result({"status": 429, "retry_after_s": 2}), Retry)
    assert isinstance(problem_result({"status": 500}), Retry)
    assert problem_result({"status": 422}) == Refused(422, {"status": 422})


class ScriptedTransport:
    """Answers each batch with the next scripted result (then acks), and notes what it was sent and when."""

    max_in_flight = 1

    def __init__(self, script: Sequence[Result]) -> None:
        self.script = list(script)
        self.sent: list[tuple[float, list[dict[str, object]]]] = []
        self.lock = threading.Lock()

    def ready(self) -> bool:
        return True

    def send(self, batch_id: str, readings: Sequence[bytes], done: Done) -> None:
        with self.lock:
            self.sent.append((time.monotonic(), [json.loads(r) for r in readings]))
            result = self.script.pop(0) if self.script else Acked(len(readings), 0)
        done(result)

    def close(self) -> None:
        pass


def test_a_retry_waits_at_least_the_services_retry_after_and_sends_the_same_readings(tmp_path: Path) -> None:
    transport = ScriptedTransport([Retry("HTTP 503", 0.5)])
    client = RobotClient("r1", transport, tmp_path / "o.db", backoff_base_s=0.01, backoff_cap_s=0.01)
    client.record_many([{"battery_level": 1.0}, {"battery_level": 2.0}])
    client.start()
    try:
        assert client.wait_sent(10)
    finally:
        client.close()
    (first_at, first), (second_at, second) = transport.sent
    assert first == second and [r["seq"] for r in first] == [1, 2]
    assert second_at - first_at >= 0.5
    assert (client.stats.accepted, client.stats.retries) == (2, 1)
    stamps = [str(r["timestamp"]) for r in first]
    assert stamps[0] < stamps[1] and all(r["robot_id"] == "r1" for r in first)


def test_a_batch_too_large_is_split_and_a_refused_one_is_set_aside(tmp_path: Path) -> None:
    too_large = Refused(413, {"status": 413})
    invalid = Refused(422, {"status": 422, "type": "/problems/invalid-reading"})
    transport = ScriptedTransport([too_large, invalid])
    client = RobotClient("r1", transport, tmp_path / "o.db")
    client.record_many([{"battery_level": float(i)} for i in range(4)])
    client.start()
    try:
        assert client.wait_sent(10)
        dead = client.outbox.dead()
    finally:
        client.close()
    assert [len(readings) for _, readings in transport.sent] == [4, 2, 2]
    assert [seq for seq, _, _ in dead] == [1, 2]  # the first half was refused; the second stored
    assert json.loads(dead[0][2])["type"] == "/problems/invalid-reading"
    assert (client.stats.accepted, client.stats.refused) == (2, 2)


class FailingAllAtOnce:
    """Holds every batch sent, then fails them all together (a broker gone), then acks what comes again."""

    max_in_flight = 8

    def __init__(self) -> None:
        self.held: list[Done] = []
        self.failed = False
        self.lock = threading.Lock()

    def ready(self) -> bool:
        return True

    def send(self, batch_id: str, readings: Sequence[bytes], done: Done) -> None:
        with self.lock:
            if self.failed:
                done(Acked(len(readings), 0))
                return
            self.held.append(done)

    def fail_all(self) -> None:
        with self.lock:
            self.failed, held = True, self.held
        for done in held:
            done(Retry("disconnected from the broker"))

    def close(self) -> None:
        pass


def test_batches_that_fail_together_back_off_once_not_once_each(tmp_path: Path) -> None:
    transport = FailingAllAtOnce()
    client = RobotClient("r1", transport, tmp_path / "o.db", max_batch=1, backoff_base_s=0.1, backoff_cap_s=30)
    client.record_many([{"battery_level": float(i)} for i in range(8)])
    client.start()
    try:
        deadline = time.monotonic() + 10
        while len(transport.held) < 8:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        failed_at = time.monotonic()
        transport.fail_all()
        assert client.wait_sent(10)
        resumed_after_s = time.monotonic() - failed_at
    finally:
        client.close()
    # One failure: a backoff of at most 0.2 s (0.1 doubled once). Counted once per batch it was up to 25.6 s.
    assert resumed_after_s < 2.0 and client.stats.retries == 8
