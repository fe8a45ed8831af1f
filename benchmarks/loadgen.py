"""A lean HTTP/1.1 load generator: pre-built requests on keep-alive connections, across processes.

Each request is sent exactly once, so every row is counted; latency is measured per request.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field

import msgspec


class _Ack(msgspec.Struct):
    accepted: int = 0
    duplicates: int = 0


_decode_ack = msgspec.json.Decoder(_Ack).decode


def build_post(path: str, body: bytes, host: str = "bench", token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def build_get(path: str, host: str = "bench", token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()


@dataclass
class LoadResult:
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # CPU the load generator itself used

    def merge(self, other: LoadResult) -> None:
        self.requests += other.requests
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.latencies_s.extend(other.latencies_s)
        self.elapsed_s = max(self.elapsed_s, other.elapsed_s)
        self.cpu_s += other.cpu_s

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return float("nan")
        return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000, 2)


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    _, has_length, rest = head.partition(b"content-length:")
    if has_length:
        return await reader.readexactly(int(rest.split(b"\r\n", 1)[0]))
    if b"transfer-encoding: chunked" not in head:
        return b""
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16):
        parts.append((await reader.readexactly(size + 2))[:-2])
    await reader.readuntil(b"\r\n")  # the blank line after the last, empty chunk
    return b"".join(parts)


async def _drive(host: str, port: int, requests: list[bytes], connections: int, count_acks: bool) -> LoadResult:
    result = LoadResult()
    indexes = iter(range(len(requests)))  # shared: each request goes out once, on whichever connection is free

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in indexes:
                started = time.perf_counter()
                writer.write(requests[i])
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                body = await _read_body(reader, head)
                result.latencies_s.append(time.perf_counter() - started)
                status = int(head[9:12])
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status == 200 and count_acks:
                    ack = _decode_ack(body)
                    result.accepted += ack.accepted
                    result.duplicates += ack.duplicates
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    result.elapsed_s = time.perf_counter() - started
    result.requests = sum(result.statuses.values())
    return result


def _child(
    host: str,
    port: int,
    requests: list[bytes],
    connections: int,
    count_acks: bool,
    go: mp.synchronize.Event,
    out: mp.Queue[bytes | str],
) -> None:
    go.wait()
    cpu_before = sum(os.times()[:2])
    try:
        result = asyncio.run(_drive(host, port, requests, connections, count_acks))
    except Exception as exc:  # reported to the parent, which would otherwise wait for ever
        out.put(repr(exc))
        return
    result.cpu_s = sum(os.times()[:2]) - cpu_before
    out.put(msgspec.msgpack.encode(result))


def run_load(
    host: str, port: int, requests: list[bytes], connections: int, processes: int = 2, count_acks: bool = False
) -> LoadResult:
    """Send every request once over ``connections`` keep-alive connections split across ``processes``.

    With ``count_acks``, each 200 body is read as the ingest acknowledgement and its counts are summed.
    """
    processes = max(1, min(processes, connections))
    ctx = mp.get_context("fork")  # children inherit the pre-built requests instead of pickling them
    go, out = ctx.Event(), ctx.Queue()
    shards = [requests[i::processes] for i in range(processes)]
    per_process = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    children = [
        ctx.Process(target=_child, args=(host, port, shard, conns, count_acks, go, out), daemon=True)
        for shard, conns in zip(shards, per_process, strict=True)
    ]
    for child in children:
        child.start()
    started = time.perf_counter()
    go.set()
    total = LoadResult()
    for _ in children:
        reply = out.get()
        if isinstance(reply, str):
            raise RuntimeError(f"load generator failed: {reply}")
        total.merge(msgspec.msgpack.decode(reply, type=LoadResult))
    total.elapsed_s = time.perf_counter() - started
    for child in children:
        child.join()
    return total
