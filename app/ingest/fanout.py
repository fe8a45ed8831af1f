"""Live readings: a fan-out of committed rows to subscribers, each with a bounded queue of encoded readings.

Ingest never waits for a subscriber: one that falls ``stream_queue_size`` readings behind is cut off.
Subscribers see the readings committed by this process; with several uvicorn workers, each sees its own share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec

from app.ingest.reading import Row, StoredReading, reading_fields


class StreamedReading(StoredReading):
    robot_id: str


_encode = msgspec.json.Encoder().encode


def encode_streamed(row: Row) -> bytes:
    return _encode(StreamedReading(**reading_fields(row[1:]), robot_id=row[0]))


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
                    data = encode_streamed(row)
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
