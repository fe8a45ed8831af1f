"""One MQTT 3.1.1 session with the broker, on the event loop: CONNECT, SUBSCRIBE, PUBLISH and PUBACK both ways, and
pings. Only what the service needs of the protocol, and no thread.

paho-mqtt (which the robot client uses) took 280 µs of the service's CPU per reading here: it reads each packet
with several small recv calls in a thread of its own, and every hand-over to the event loop contends for the GIL.
This reads whatever arrived in one call and parses it in place: benchmarks/NOTES.md, issue 22.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Final, cast

CONNECT, CONNACK, PUBLISH, PUBACK = 0x10, 0x20, 0x30, 0x40
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 0x82, 0x90, 0xC0, 0xD0, 0xE0
CONNECT_REFUSALS: Final = {
    1: "unacceptable protocol version",
    2: "client id rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}
_PING: Final = bytes([PINGREQ, 0])
_U16 = struct.Struct("!H")

log = logging.getLogger(__name__)

# Called with the connection it came on, the topic, the payload, and the packet id to acknowledge (None: QoS 0).
MessageHandler = Callable[["MqttConnection", str, bytes, int | None], None]


class ConnectRefused(ConnectionError):
    pass


def encode_packet(kind: int, body: bytes) -> bytes:
    """A packet: its type byte, its remaining length (a base-128 varint), its body."""
    length, header = len(body), bytearray([kind])
    while True:
        digit, length = length & 0x7F, length >> 7
        header.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(header) + body


def encode_string(value: str) -> bytes:
    raw = value.encode()
    return _U16.pack(len(raw)) + raw


def encode_connect(client_id: str, username: str, password: str, keepalive_s: int) -> bytes:
    flags = 0x80 | 0x40 | 0x02  # a user name, a password, a clean session
    head = encode_string("MQTT") + bytes([4, flags]) + _U16.pack(keepalive_s)
    return encode_packet(CONNECT, head + encode_string(client_id) + encode_string(username) + encode_string(password))


def split_packets(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take every whole packet off the front of ``buffer`` (a partial one stays for the next read)."""
    packets: list[tuple[int, bytes]] = []
    position, size = 0, len(buffer)
    while size - position >= 2:
        length, shift, cursor = 0, 0, position + 1
        while True:
            if cursor >= size:
                del buffer[:position]
                return packets
            digit = buffer[cursor]
            length |= (digit & 0x7F) << shift
            cursor += 1
            shift += 7
            if not digit & 0x80:
                break
            if shift > 21:
                raise ValueError("malformed remaining length")
        if size - cursor < length:
            break
        packets.append((buffer[position], bytes(buffer[cursor : cursor + length])))
        position = cursor + length
    del buffer[:position]
    return packets


class MqttConnection(asyncio.Protocol):
    """Messages are handed to ``on_message`` as they arrive; each is acknowledged to the broker only when the handler
    calls ``puback``. Past ``max_unacked`` unacknowledged messages the connection stops reading, so the broker holds
    the rest (TCP pushes back) instead of this process's memory growing."""

    def __init__(self, on_message: MessageHandler, max_unacked: int) -> None:
        self._on_message = on_message
        self._max_unacked = max_unacked
        self._unacked = 0
        self._paused = False
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        # Packets written in one turn of the event loop go out in one send: a flush's commit answers hundreds of
        # messages at once, two packets each, and a send per packet was a sixth of this process's CPU (py-spy).
        self._outgoing: list[bytes] = []
        self._next_id = 0
        self._answers: dict[int, asyncio.Future[bytes]] = {}  # CONNACK (key 0) and SUBACK by packet id
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._pinger: asyncio.Task[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport: uvloop's (what uvicorn runs the service on) does not subclass asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        try:
            packets = split_packets(buffer)
        except ValueError:
            self.close()
            return
        for kind, body in packets:
            if kind & 0xF0 == PUBLISH:
                self._received_publish(kind, body)
            elif kind in (PUBACK, PINGRESP):
                pass  # our QoS 1 problems were taken; the broker is alive
            elif kind in (CONNACK, SUBACK):
                key = 0 if kind == CONNACK else _U16.unpack_from(body)[0]
                answer = self._answers.pop(key, None)
                if answer is not None and not answer.done():
                    answer.set_result(body)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._pinger is not None:
            self._pinger.cancel()
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(ConnectionError("the broker closed the connection"))
        if not self.closed.done():
            self.closed.set_result(None)

    # the session

    async def open(
        self, client_id: str, username: str, password: str, keepalive_s: int, subscription: str, qos: int
    ) -> None:
        """CONNECT and SUBSCRIBE; ConnectRefused if the broker says no."""
        connack = self._expect(0)
        self._write(encode_connect(client_id, username, password, keepalive_s))
        code = (await connack)[1]
        if code:
            raise ConnectRefused(CONNECT_REFUSALS.get(code, f"CONNACK code {code}"))
        packet_id = self._packet_id()
        suback = self._expect(packet_id)
        self._write(encode_packet(SUBSCRIBE, _U16.pack(packet_id) + encode_string(subscription) + bytes([qos])))
        granted = (await suback)[2:]
        if not granted or granted[0] == 0x80:
            raise ConnectRefused(f"subscription to {subscription} refused")
        self._pinger = asyncio.create_task(self._ping(keepalive_s / 2), name="mqtt-ping")

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        """Send a message (dropped if the connection is gone: the robot asks again)."""
        if qos:
            head = encode_string(topic) + _U16.pack(self._packet_id())
            self._write(encode_packet(PUBLISH | 0x02, head + payload))
        else:
            self._write(encode_packet(PUBLISH, encode_string(topic) + payload))

    def puback(self, packet_id: int | None) -> None:
        """Acknowledge a message to the broker: it is handled (stored and answered, or refused)."""
        if packet_id is None:
            return
        self._unacked -= 1
        self._write(bytes([PUBACK, 2]) + _U16.pack(packet_id))
        if self._paused and self._unacked <= self._max_unacked // 2 and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def close(self) -> None:
        if self._transport is not None:
            self._outgoing.append(bytes([DISCONNECT, 0]))
            self._send_outgoing()
            self._transport.close()

    # inside

    def _received_publish(self, kind: int, body: bytes) -> None:
        topic_length = _U16.unpack_from(body)[0]
        topic = body[2 : 2 + topic_length].decode()
        qos = (kind >> 1) & 0x03
        if qos:
            packet_id: int | None = _U16.unpack_from(body, 2 + topic_length)[0]
            payload = body[4 + topic_length :]
            self._unacked += 1
            if self._unacked >= self._max_unacked and not self._paused and self._transport is not None:
                self._paused = True
                self._transport.pause_reading()
        else:
            packet_id, payload = None, body[2 + topic_length :]
        self._on_message(self, topic, payload, packet_id)

    def _write(self, data: bytes) -> None:
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._send_outgoing)
        self._outgoing.append(data)

    def _send_outgoing(self) -> None:
        data, self._outgoing = b"".join(self._outgoing), []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 65_535 + 1
        return self._next_id

    def _expect(self, key: int) -> asyncio.Future[bytes]:
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._answers[key] = answer
        return answer

    async def _ping(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self._write(_PING)
