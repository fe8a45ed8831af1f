"""How a batch of readings reaches the service, and what its answer means for the outbox: forget the readings
(``Acked``), keep them and try again (``Retry``), or set them aside for good (``Refused``).

Only a 2xx over HTTP, or a message on the robot's ack topic over MQTT, means stored: the service sends either only
after its commit. The broker's PUBACK is not enough (Mosquitto killed -9 loses QoS 1 messages it acknowledged).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

HTTP_TIMEOUT_S = 10.0
ACK_TIMEOUT_S = 10.0  # an MQTT batch with no answer by then is sent again (its readings are stored once anyway)
KEEPALIVE_S = 30


@dataclass(frozen=True)
class Acked:
    accepted: int
    duplicates: int


@dataclass(frozen=True)
class Retry:
    reason: str
    after_s: float | None = None  # the service's Retry-After, if it gave one


@dataclass(frozen=True)
class Refused:
    status: int
    problem: Mapping[str, Any]


Result = Acked | Retry | Refused
Done = Callable[[Result], None]


class Transport(Protocol):
    max_in_flight: int  # batches awaiting an answer at once

    def ready(self) -> bool:
        """Whether a batch sent now could be answered (MQTT: connected and subscribed to the answers)."""

    def send(self, batch_id: str, readings: Sequence[bytes], done: Done) -> None:
        """Send the encoded readings; call ``done`` once with the answer (from any thread)."""

    def close(self) -> None: ...


def result_of(status: int, body: bytes, retry_after: str | None) -> Result:
    """An HTTP answer as the outbox should take it. A refused credential (401) keeps the readings: it is not their
    fault, and an operator can still put it right; so does any 5xx, 408 and 429."""
    if 200 <= status < 300:
        answer = json.loads(body)
        return Acked(int(answer.get("accepted", 0)), int(answer.get("duplicates", 0)))
    after_s = _seconds(retry_after)
    if status in (401, 408, 429) or status >= 500:
        return Retry(f"HTTP {status}", after_s)
    try:
        problem = json.loads(body)
    except ValueError:
        problem = {"status": status, "detail": body[:200].decode(errors="replace")}
    return Refused(status, problem if isinstance(problem, dict) else {"status": status})


def problem_result(problem: Mapping[str, Any]) -> Result:
    """A problem from the robot's errors topic as the outbox should take it."""
    status = int(problem.get("status", 500))
    after_s = problem.get("retry_after_s")
    if after_s is not None or status == 429 or status >= 500:
        return Retry(f"problem {status}: {problem.get('detail', '')}", None if after_s is None else float(after_s))
    return Refused(status, problem)


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


class HttpTransport:
    """``POST /telemetry`` with the robot's token, one batch at a time over one kept-alive connection."""

    max_in_flight = 1

    def ready(self) -> bool:
        return True  # each request finds out for itself

    def __init__(self, base_url: str, token: str, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._url, self._timeout_s = url, timeout_s
        self._path = url.path.rstrip("/") + "/telemetry"
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._url.scheme == "https" else http.client.HTTPConnection
            self._conn = kind(self._url.hostname or "", self._url.port, timeout=self._timeout_s)
        return self._conn

    def send(self, batch_id: str, readings: Sequence[bytes], done: Done) -> None:
        body = b"[" + b",".join(readings) + b"]"
        try:
            conn = self._connection()
            conn.request("POST", self._path, body, self._headers)
            response = conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()  # a fresh connection next time
            done(Retry(f"no answer: {exc!r}"))
            return
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        done(result_of(response.status, answer, response.getheader("Retry-After")))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class MqttTransport:
    """Publish each batch (QoS 1) on ``fleet/<robot_id>/telemetry`` as ``{"batch", "readings"}``, and take the
    answer from ``fleet/<robot_id>/ack`` or ``/errors``. The robot logs in with its id and its token."""

    def __init__(
        self,
        host: str,
        port: int,
        robot_id: str,
        token: str,
        *,
        max_in_flight: int = 8,
        ack_timeout_s: float = ACK_TIMEOUT_S,
    ) -> None:
        self.max_in_flight = max_in_flight
        self._ack_timeout_s = ack_timeout_s
        self._telemetry = f"fleet/{robot_id}/telemetry"
        self._ack, self._errors = f"fleet/{robot_id}/ack", f"fleet/{robot_id}/errors"
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[Done, float]] = {}  # batch id -> its callback and deadline (monotonic)
        self._ready = threading.Event()  # connected and subscribed to the answers: only then is it safe to send
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"robot-{robot_id}",
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,
        )
        client.username_pw_set(robot_id, token)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.connect_async(host, port, KEEPALIVE_S)
        client.loop_start()
        self._client = client

    @classmethod
    def from_url(cls, url: str, robot_id: str, token: str, **options: Any) -> MqttTransport:
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError(f"not an mqtt:// URL: {url!r}")
        return cls(parts.hostname, parts.port or 1883, robot_id, token, **options)

    def wait_ready(self, timeout_s: float) -> bool:
        return self._ready.wait(timeout_s)

    def ready(self) -> bool:
        return self._ready.is_set()

    def send(self, batch_id: str, readings: Sequence[bytes], done: Done) -> None:
        if not self._ready.is_set():
            done(Retry("not connected to the broker"))
            return
        payload = b'{"batch":"' + batch_id.encode() + b'","readings":[' + b",".join(readings) + b"]}"
        with self._lock:
            self._waiting[batch_id] = (done, time.monotonic() + self._ack_timeout_s)
        self._client.publish(self._telemetry, payload, qos=1)

    def expire(self) -> None:
        """Batches with no answer in time: send them again."""
        now = time.monotonic()
        with self._lock:
            late = [batch for batch, (_, deadline) in self._waiting.items() if deadline <= now]
            callbacks = [self._waiting.pop(batch)[0] for batch in late]
        for done in callbacks:
            done(Retry("no answer from the service in time"))

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self._fail_all("closed")

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            callbacks = [done for done, _ in self._waiting.values()]
            self._waiting.clear()
        for done in callbacks:
            done(Retry(reason))

    # paho's network thread

    def _on_connect(
        self, client: Client, userdata: Any, flags: ConnectFlags, reason: ReasonCode, properties: Properties | None
    ) -> None:
        if not reason.is_failure:
            client.subscribe([(self._ack, 1), (self._errors, 1)])

    def _on_subscribe(
        self, client: Client, userdata: Any, mid: int, reasons: list[ReasonCode], properties: Properties | None
    ) -> None:
        if all(not reason.is_failure for reason in reasons):
            self._ready.set()

    def _on_disconnect(
        self, client: Client, userdata: Any, flags: DisconnectFlags, reason: ReasonCode, properties: Properties | None
    ) -> None:
        self._ready.clear()
        self._fail_all(f"disconnected from the broker ({reason})")

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        try:
            answer = json.loads(message.payload)
            batch = answer.get("batch")
        except (ValueError, AttributeError):
            return
        with self._lock:
            waiting = self._waiting.pop(batch, None) if isinstance(batch, str) else None
        if waiting is None:  # an answer to a batch already given up on (and sent again), or not ours
            return
        done = waiting[0]
        if message.topic == self._ack:
            done(Acked(int(answer.get("accepted", 0)), int(answer.get("duplicates", 0))))
        else:
            done(problem_result(answer))
