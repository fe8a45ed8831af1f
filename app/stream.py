"""Live readings: a fan-out of committed rows to Server-Sent Events subscribers, each with a bounded queue.

Ingest never waits for a subscriber: one that falls ``stream_queue_size`` readings behind is cut off.
Subscribers see the readings committed by this process; with several uvicorn workers, each sees its own share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.ingest import Row
from app.params import ex
from app.problems import problem_responses
from app.schemas import Location, StoredReading
from app.state import get_services

HEARTBEAT_S = 15.0  # a comment line this often keeps idle proxies from closing the stream


class StreamedReading(StoredReading):
    robot_id: str


_encode = msgspec.json.Encoder().encode


class Subscriber:
    __slots__ = ("overflowed", "queue", "robot_id")

    def __init__(self, robot_id: str | None, queue_size: int) -> None:
        self.robot_id = robot_id
        # None is queued last for a subscriber that fell behind or is shut down; +1 leaves room for it.
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=queue_size + 1)
        self.overflowed = False


class Broadcaster:
    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._subscribers: set[Subscriber] = set()

    def subscribe(self, robot_id: str | None) -> Subscriber:
        subscriber = Subscriber(robot_id, self._queue_size)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def publish(self, rows: Sequence[Row]) -> None:
        """The ingest commit listener: called with each flush's new rows, right after COMMIT."""
        if not self._subscribers:
            return
        for row in rows:
            data: bytes | None = None
            for subscriber in list(self._subscribers):
                if subscriber.robot_id is not None and subscriber.robot_id != row[0]:
                    continue
                if data is None:
                    data = _encode(_streamed(row))
                if subscriber.queue.qsize() >= self._queue_size:
                    self._cut_off(subscriber, overflowed=True)
                else:
                    subscriber.queue.put_nowait(data)

    def close(self) -> None:
        for subscriber in list(self._subscribers):
            self._cut_off(subscriber, overflowed=False)

    def _cut_off(self, subscriber: Subscriber, *, overflowed: bool) -> None:
        self.unsubscribe(subscriber)
        subscriber.overflowed = overflowed
        while not subscriber.queue.empty():  # what it has not read yet is dropped with it
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(None)


def _streamed(row: Row) -> StreamedReading:
    return StreamedReading(
        robot_id=row[0],
        timestamp=row[1],
        location=Location(latitude=row[2], longitude=row[3]),
        battery_level=row[4],
        battery_voltage=row[5],
        status=row[6],  # type: ignore[arg-type]  # validated on the way in
        seq=row[7],
    )


async def _events(broadcaster: Broadcaster, subscriber: Subscriber) -> AsyncIterator[ServerSentEventMessage]:
    try:
        yield ServerSentEventMessage(data=None, comment="subscribed")
        while True:
            try:
                data = await asyncio.wait_for(subscriber.queue.get(), timeout=HEARTBEAT_S)
            except TimeoutError:
                yield ServerSentEventMessage(data=None, comment="heartbeat")
                continue
            if data is None:
                if subscriber.overflowed:
                    yield ServerSentEventMessage(event="overflow", data="fell too far behind; reconnect")
                return
            yield ServerSentEventMessage(event="reading", data=data.decode())
    finally:
        broadcaster.unsubscribe(subscriber)


@get(
    "/telemetry/stream",
    responses=problem_responses(400),
    tags=["live and export"],
    summary="Live readings as Server-Sent Events",
    description=(
        "Each `reading` event is a stored reading, sent after its commit. A subscriber that falls behind gets "
        "an `overflow` event and is disconnected; ingest never waits for it."
    ),
)
async def stream_telemetry(
    request: Request[Any, Any, Any],
    robot_id: Annotated[str | None, Parameter(description="Only this robot's readings.", examples=ex("R2-D2"))] = None,
) -> ServerSentEvent:
    broadcaster = get_services(request).broadcaster
    return ServerSentEvent(_events(broadcaster, broadcaster.subscribe(robot_id)))
