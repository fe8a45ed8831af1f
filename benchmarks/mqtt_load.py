"""A lean MQTT 3.1.1 load generator: each robot on its own connection with its own credentials publishes its
readings one per message (QoS 1) and waits for the service's ack after commit before the next, across processes.

Only what the bench needs of the protocol is spoken (CONNECT, SUBSCRIBE, PUBLISH, PUBACK), so that the generator's
CPU stays small beside the broker's and the API's; latency is from publish to the service's ack.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import struct
import time
from collections.abc import Callable, Sequence

import msgspec

from app.mqtt.connection import (
    CONNACK,
    PUBACK,
    PUBLISH,
    SUBACK,
    SUBSCRIBE,
    encode_connect,
    encode_packet,
    encode_string,
)
from benchmarks.loadgen import LoadResult

KEEPALIVE_S = 60


class _Ack(msgspec.Struct):
    batch: str
    accepted: int = 0
    duplicates: int = 0


_decode_ack = msgspec.json.Decoder(_Ack).decode


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    kind = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        digit = (await reader.readexactly(1))[0]
        length += (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            break
    return kind, await reader.readexactly(length)


async def _connect_robot(
    host: str, port: int, robot_id: str, token: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(encode_connect(f"bench-{robot_id}", robot_id, token, KEEPALIVE_S))
    kind, body = await _read_packet(reader)
    if kind != CONNACK or body[1] != 0:
        raise RuntimeError(f"broker refused robot {robot_id}: CONNACK {body!r}")
    writer.write(encode_packet(SUBSCRIBE, struct.pack("!H", 1) + encode_string(f"fleet/{robot_id}/ack") + b"\x01"))
    kind, _ = await _read_packet(reader)
    if kind != SUBACK:
        raise RuntimeError(f"no SUBACK for robot {robot_id}")
    return reader, writer


async def _publish_readings(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    robot_id: str,
    readings: Sequence[bytes],
    result: LoadResult,
    interval_s: float,
    phase: float,
) -> None:
    telemetry = encode_string(f"fleet/{robot_id}/telemetry")
    first = time.perf_counter() + phase * interval_s  # robots' clocks are not in step: spread over the interval
    for index, reading in enumerate(readings):
        if interval_s:  # paced, as a robot sends: its next reading when it is due (at once if the last ack was late)
            await asyncio.sleep(max(0.0, first + index * interval_s - time.perf_counter()))
        batch = str(index)
        payload = b'{"batch":"' + batch.encode() + b'","readings":' + reading + b"}"
        started = time.perf_counter()
        writer.write(encode_packet(PUBLISH | 0x02, telemetry + struct.pack("!H", index % 65_535 + 1) + payload))
        while True:  # the broker's PUBACK, then the service's ack (a PUBLISH on the ack topic)
            kind, body = await _read_packet(reader)
            if kind & 0xF0 != PUBLISH:
                continue
            start = 2 + struct.unpack_from("!H", body)[0]
            if kind & 0x06:  # QoS 1 (the service sends acks at QoS 0, problems at 1)
                writer.write(encode_packet(PUBACK, body[start : start + 2]))
                start += 2
            ack = _decode_ack(body[start:])
            if ack.batch == batch:
                break
        result.latencies_s.append(time.perf_counter() - started)
        result.accepted += ack.accepted
        result.duplicates += ack.duplicates
        result.statuses[200] = result.statuses.get(200, 0) + 1


async def _drive(
    host: str, port: int, robots: list[tuple[str, str, list[bytes]]], connected: Callable[[], None], rate_hz: float
) -> LoadResult:
    """Connect every robot first (the broker checks each password), say so, then time the readings alone."""
    result = LoadResult()
    streams = await asyncio.gather(*(_connect_robot(host, port, robot_id, token) for robot_id, token, _ in robots))
    await asyncio.to_thread(connected)
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _publish_readings(
                reader, writer, robot_id, readings, result, 1 / rate_hz if rate_hz else 0.0, index / len(robots)
            )
            for index, ((reader, writer), (robot_id, _, readings)) in enumerate(zip(streams, robots, strict=True))
        )
    )
    result.elapsed_s = time.perf_counter() - started
    result.requests = len(result.latencies_s)
    for _, writer in streams:
        writer.close()
    return result


def _child(
    host: str,
    port: int,
    robots: list[tuple[str, str, list[bytes]]],
    rate_hz: float,
    ready: mp.Queue[str],
    go: mp.synchronize.Event,
    out: mp.Queue[bytes | str],
) -> None:
    cpu_before = [0.0]

    def connected() -> None:
        ready.put("connected")
        go.wait()
        cpu_before[0] = sum(os.times()[:2])  # the readings' CPU, not the connections'

    try:
        result = asyncio.run(_drive(host, port, robots, connected, rate_hz))
    except Exception as exc:  # reported to the parent, which would otherwise wait for ever
        ready.put(repr(exc))
        out.put(repr(exc))
        return
    result.cpu_s = sum(os.times()[:2]) - cpu_before[0]
    out.put(msgspec.msgpack.encode(result))


def run_mqtt_load(
    host: str,
    port: int,
    robots: list[tuple[str, str, list[bytes]]],
    processes: int = 2,
    on_connected: Callable[[], None] = lambda: None,
    rate_hz: float = 0.0,
) -> LoadResult:
    """Every robot (id, token, its encoded readings) publishes its readings one by one, each after the last one's
    ack, and with ``rate_hz`` no sooner than its rate allows (0: at once); the robots are split across
    ``processes``. Once all are connected ``on_connected`` is called (to start a CPU meter, say), then they start
    together; elapsed time runs from there."""
    ctx = mp.get_context("fork")
    ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    children = [
        ctx.Process(target=_child, args=(host, port, robots[i::processes], rate_hz, ready, go, out), daemon=True)
        for i in range(processes)
    ]
    for child in children:
        child.start()
    for _ in children:
        if (said := ready.get()) != "connected":
            raise RuntimeError(f"MQTT load generator failed: {said}")
    on_connected()
    go.set()
    total = LoadResult()
    for _ in children:
        reply = out.get()
        if isinstance(reply, str):
            raise RuntimeError(f"MQTT load generator failed: {reply}")
        total.merge(msgspec.msgpack.decode(reply, type=LoadResult))  # elapsed: the slowest child's
    for child in children:
        child.join()
    return total
