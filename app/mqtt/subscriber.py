"""The service's side of MQTT: take the robots' messages through a shared subscription, store them through the
same group commit as HTTP, and answer each on the robot's ack topic only after its commit.

The broker's own acknowledgement is not durability (Mosquitto killed -9 loses QoS 1 messages it acknowledged), so
a robot keeps each batch until the ack here. This process also acknowledges each message to the broker only after
answering it (manual acks), and caps the messages it holds unanswered (MQTT 5 receive maximum): past it the broker
holds them back, so a flood queues at the broker, not in this process's memory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Final

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from app import metrics
from app.auth.principals import Principal, Scope
from app.errors import BodyTooLarge, FleetError, ServiceFault
from app.ingest.buffer import Ingestor
from app.limits import RateLimiter
from app.mqtt.accounts import read_secret
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
from app.settings import MqttSettings

KEEPALIVE_S: Final = 30
RECONNECT_MAX_S: Final = 5  # the broker restarted: try again at least this often
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
        self._client: Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Messages handed over by the client's network thread, and whether the event loop was woken for them.
        self._lock = threading.Lock()
        self._inbox: list[MQTTMessage] = []
        self._wake_pending = False
        self._handling: set[asyncio.Task[None]] = set()
        # A robot over MQTT writes only its own readings, like its token over HTTP; the broker's ACL already holds
        # it to its own topic. Negative ids never meet a credential's: the ingest queue's share is per writer.
        self._principals: dict[str, Principal] = {}

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        host, port = self._settings.broker_address
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._name,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=True,
        )
        client.username_pw_set(self._settings.mqtt_username, read_secret(self._settings.mqtt_secret_file))
        client.manual_ack_set(True)
        client.reconnect_delay_set(1, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.ReceiveMaximum = min(self._settings.mqtt_max_in_flight, 65_535)
        client.connect_async(host, port, KEEPALIVE_S, clean_start=True, properties=properties)
        client.loop_start()
        self._client = client

    async def close(self) -> None:
        """Take no more messages, answer those taken (the ingestor still flushes), then leave the broker."""
        client = self._client
        if client is None:
            return
        client.on_message = None
        client.unsubscribe(SHARED_SUBSCRIPTION)
        if self._handling:
            await asyncio.wait(self._handling, timeout=DRAIN_TIMEOUT_S)
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)

    # The client's network thread: as little as possible, then over to the event loop.

    def _on_connect(
        self, client: Client, userdata: Any, flags: ConnectFlags, reason: ReasonCode, properties: Properties | None
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt: the broker refused the service's connection: %s", reason)
            return
        log.info("mqtt: connected; subscribing to %s", SHARED_SUBSCRIPTION)
        client.subscribe(SHARED_SUBSCRIPTION, qos=1)

    def _on_disconnect(
        self,
        client: Client,
        userdata: Any,
        flags: DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        log.warning("mqtt: disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        with self._lock:
            self._inbox.append(message)
            wake = not self._wake_pending
            self._wake_pending = True
        if wake and self._loop is not None:
            self._loop.call_soon_threadsafe(self._take_inbox)

    # The event loop.

    def _take_inbox(self) -> None:
        with self._lock:
            messages, self._inbox = self._inbox, []
            self._wake_pending = False
        for message in messages:
            task = asyncio.create_task(self._handle(message))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def _handle(self, message: MQTTMessage) -> None:
        client = self._client
        assert client is not None
        robot_id = robot_of(message.topic)
        if robot_id is None:  # the ACL lets no one publish elsewhere under the subscription; nothing to answer
            client.ack(message.mid, message.qos)
            return
        payload = bytes(message.payload)
        batch: str | None = None
        try:
            if len(payload) > self._max_body_bytes:
                raise BodyTooLarge(f"the message is larger than {self._max_body_bytes} bytes (FLEET_MAX_BODY_BYTES)")
            decoded = decode_message(payload)
            batch = decoded.batch
            self._rate.take(robot_id)
            result = await self._ingestor.ingest_body(bytes(decoded.readings), self._principal(robot_id))
        except FleetError as exc:
            self._refuse(client, robot_id, exc, batch if batch is not None else batch_of(payload))
        except Exception:
            log.exception("mqtt: a message of robot %r could not be handled", robot_id)
            fault = ServiceFault(
                "the service failed to handle this message; it is logged, retry it later", retry_after_s=1
            )
            self._refuse(client, robot_id, fault, batch)
        else:
            client.publish(topic_for(robot_id, ACK), encode_ack(decoded.batch, result.accepted, result.duplicates), 1)
            metrics.MQTT_ACKS.inc()
        client.ack(message.mid, message.qos)

    def _refuse(self, client: Client, robot_id: str, exc: FleetError, batch: str | None) -> None:
        retry = "Retry-After" in exc.headers
        (metrics.MQTT_DEFERRED if retry else metrics.MQTT_DEAD_LETTERS).labels(exc.kind.value).inc()
        client.publish(topic_for(robot_id, ERRORS), encode_problem(exc, batch), 1)

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
