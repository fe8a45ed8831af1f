"""The service's side of MQTT: take the robots' messages through a shared subscription, store them through the
same group commit as HTTP, and answer each on the robot's ack topic only after its commit.

The broker's own acknowledgement is not durability (Mosquitto killed -9 loses QoS 1 messages it acknowledged), so
a robot keeps each batch until the ack here. This process acknowledges each message to the broker only after
answering it, and holds at most ``mqtt_max_in_flight`` unanswered (app.mqtt.connection stops reading past it).
Acks go at QoS 0: one that is lost costs the robot a resend, which is stored once and acknowledged again. Problems
go at QoS 1.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from app.model.errors import BodyTooLarge, FleetError, ServiceFault
from app.model.principal import Principal, Scope
from app.mqtt.accounts import read_secret
from app.mqtt.connection import MqttConnection
from app.mqtt.messages import (
    ACK,
    ERRORS,
    SHARED_SUBSCRIPTION,
    batch_of,
    decode_message,
    encode_ack,
    encode_problem,
    robot_of,
    topic_for,
)
from app.platform import metrics
from app.platform.limits import RateLimiter
from app.platform.settings import MqttSettings
from app.telemetry.buffer import Ingestor

KEEPALIVE_S: Final = 30
RECONNECT_MIN_S: Final = 0.5  # the broker went away: try again after this, doubling up to RECONNECT_MAX_S
RECONNECT_MAX_S: Final = 5.0
DRAIN_TIMEOUT_S: Final = 10  # at shutdown, how long answers to messages already taken may take

log = logging.getLogger(__name__)


class MqttSubscriber:
    def __init__(
        self, settings: MqttSettings, ingestor: Ingestor, rate: RateLimiter, max_body_bytes: int, name: str
    ) -> None:
        self._settings = settings
        self._ingestor = ingestor
        self._rate = rate
        self._max_body_bytes = max_body_bytes
        self._name = name
        self._password = read_secret(settings.mqtt_secret_file)
        self._session: asyncio.Task[None] | None = None
        self._connection: MqttConnection | None = None
        self._closing = False
        self._handling: set[asyncio.Task[None]] = set()
        # A robot over MQTT writes only its own readings, like its token over HTTP; the broker's ACL already holds
        # it to its own topic. Negative ids never meet a credential's: the ingest queue's share is per writer.
        self._principals: dict[str, Principal] = {}

    def start(self) -> None:
        self._session = asyncio.create_task(self._keep_connected(), name="mqtt-session")

    async def close(self) -> None:
        """Take no more messages, answer those taken (the ingestor still flushes), then leave the broker."""
        self._closing = True
        if self._handling:
            await asyncio.wait(self._handling, timeout=DRAIN_TIMEOUT_S)
        if self._session is not None:
            self._session.cancel()
            await asyncio.gather(self._session, return_exceptions=True)
        if self._connection is not None:
            self._connection.close()

    async def _keep_connected(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self._settings.broker_address
        delay_s, failing = RECONNECT_MIN_S, False
        while True:
            try:
                _, connection = await loop.create_connection(
                    lambda: MqttConnection(self._take, self._settings.mqtt_max_in_flight), host, port
                )
                self._connection = connection
                await connection.open(
                    self._name, self._settings.mqtt_username, self._password, KEEPALIVE_S, SHARED_SUBSCRIPTION, 1
                )
                log.info("mqtt: connected to %s:%s, subscribed to %s", host, port, SHARED_SUBSCRIPTION)
                delay_s, failing = RECONNECT_MIN_S, False
                await connection.closed
                log.warning("mqtt: the broker closed the connection; reconnecting")
            except (OSError, ConnectionError) as exc:
                if not failing:
                    log.warning("mqtt: cannot reach the broker at %s:%s (%r); retrying", host, port, exc)
                failing = True
                if self._connection is not None:
                    self._connection.close()
            await asyncio.sleep(delay_s)
            delay_s = min(RECONNECT_MAX_S, delay_s * 2)

    def _take(self, connection: MqttConnection, topic: str, payload: bytes, packet_id: int | None) -> None:
        if self._closing:  # not acknowledged to the broker: it is the robot's to send again
            return
        task = asyncio.create_task(self._handle(connection, topic, payload, packet_id))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _handle(self, connection: MqttConnection, topic: str, payload: bytes, packet_id: int | None) -> None:
        robot_id = robot_of(topic)
        if robot_id is None:  # the ACL lets no one publish elsewhere under the subscription; nothing to answer
            connection.puback(packet_id)
            return
        batch: str | None = None
        try:
            if len(payload) > self._max_body_bytes:
                raise BodyTooLarge(f"the message is larger than {self._max_body_bytes} bytes (FLEET_MAX_BODY_BYTES)")
            decoded = decode_message(payload)
            batch = decoded.batch
            self._rate.take(robot_id)
            result = await self._ingestor.ingest_body(bytes(decoded.readings), self._principal(robot_id))
        except FleetError as exc:
            self._refuse(connection, robot_id, exc, batch if batch is not None else batch_of(payload))
        except Exception:
            log.exception("mqtt: a message of robot %r could not be handled", robot_id)
            fault = ServiceFault("the service failed to handle this message; it is logged, retry it", retry_after_s=1)
            self._refuse(connection, robot_id, fault, batch)
        else:
            connection.publish(topic_for(robot_id, ACK), encode_ack(decoded.batch, result.accepted, result.duplicates))
            metrics.MQTT_ACKS.inc()
        connection.puback(packet_id)

    def _refuse(self, connection: MqttConnection, robot_id: str, exc: FleetError, batch: str | None) -> None:
        retry = "Retry-After" in exc.headers
        (metrics.MQTT_DEFERRED if retry else metrics.MQTT_DEAD_LETTERS).labels(exc.kind.value).inc()
        connection.publish(topic_for(robot_id, ERRORS), encode_problem(exc, batch), qos=1)

    def _principal(self, robot_id: str) -> Principal:
        principal = self._principals.get(robot_id)
        if principal is None:
            principal = self._principals[robot_id] = Principal(
                credential_id=-1 - len(self._principals),
                name=f"robot {robot_id} over MQTT",
                scopes=frozenset({Scope.WRITE_OWN}),
                robot_id=robot_id,
            )
        return principal
