"""Live readings: a fan-out of committed rows to subscribers, each with a bounded queue of encoded readings.

Ingest never waits for a subscriber: one that falls ``stream_queue_size`` readings behind is cut off.
Subscribers see the readings committed by this process at once, and those of other processes (workers or
instances) through ``relay.CommitRelay``, a little later.
Each reading goes out with its stream position, (stored_at, robot_id, timestamp), which only ever rises: flushes
are handed on in order (``commits.CommitOrder``), and a flush's rows are sorted by robot and time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

import msgspec

from app.model.reading import Row, StoredReading, reading_args
from app.platform.cursors import Position


class StreamedReading(StoredReading):
    robot_id: str


_encode = msgspec.json.Encoder().encode


def encode_streamed(row: Row) -> bytes:
    return _encode(StreamedReading(*reading_args(row[1:]), row[0]))


def encode_reading(reading: StreamedReading) -> bytes:
    return _encode(reading)


# What a subscriber's queue holds: a reading's stream position and its JSON, or an alert event's type and its
# JSON (alerts have no stream position: a client that missed some reads GET /alerts); None ends the stream.
Event = tuple[Position, bytes]
AlertNotice = tuple[str, bytes]
READING_EVENT = "reading"


def _robot_and_time(row: Row) -> tuple[str, datetime]:
    return row[0], row[1]


class Subscriber:
    __slots__ = ("event_types", "overflowed", "queue", "robot_ids")

    def __init__(self, robot_ids: frozenset[str] | None, event_types: frozenset[str], queue_size: int) -> None:
        self.robot_ids = robot_ids  # None: every robot
        self.event_types = event_types  # "reading" and the alert event types it asked for
        # None is queued last for a subscriber that fell behind or is shut down; +1 leaves room for it.
        self.queue: asyncio.Queue[Event | AlertNotice | None] = asyncio.Queue(maxsize=queue_size + 1)
        self.overflowed = False


class Broadcaster:
    """Subscribers are indexed by robot, so publishing a reading costs only its own robot's subscribers and the
    fleet-wide ones, however many are filtered to other robots."""

    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._everything: set[Subscriber] = set()
        self._by_robot: dict[str, set[Subscriber]] = {}
        self._alerts: set[Subscriber] = set()  # those asking for any alert event: few, and alerts are rare

    @property
    def subscriber_count(self) -> int:
        return len(self._all_subscribers())

    @property
    def wants_readings(self) -> bool:
        """Whether any subscriber takes readings (one that asked for alert events only does not)."""
        return bool(self._everything or self._by_robot)

    def _all_subscribers(self) -> set[Subscriber]:
        return {*self._everything, *(s for subs in self._by_robot.values() for s in subs), *self._alerts}

    def subscribe(
        self, robot_ids: frozenset[str] | None, event_types: frozenset[str] = frozenset({READING_EVENT})
    ) -> Subscriber:
        subscriber = Subscriber(robot_ids, event_types, self._queue_size)
        if event_types - {READING_EVENT}:
            self._alerts.add(subscriber)
        if READING_EVENT not in event_types:
            return subscriber
        if robot_ids is None:
            self._everything.add(subscriber)
        else:
            for robot_id in robot_ids:
                self._by_robot.setdefault(robot_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._alerts.discard(subscriber)
        if subscriber.robot_ids is None:
            self._everything.discard(subscriber)
            return
        for robot_id in subscriber.robot_ids:
            subscribers = self._by_robot.get(robot_id)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._by_robot[robot_id]

    def publish(self, rows: Sequence[Row], stored_at: datetime) -> None:
        """The ingest commit listener: called with each flush's new rows after COMMIT, flushes in order."""
        everything, by_robot = self._everything, self._by_robot
        if not everything and not by_robot:
            return
        for row in sorted(rows, key=_robot_and_time):
            filtered = by_robot.get(row[0])
            if not everything and not filtered:
                continue
            self._offer(((stored_at, row[0], row[1]), encode_streamed(row)), [*everything, *(filtered or ())])

    def publish_events(self, events: Sequence[Event]) -> None:
        """Readings another process committed, already encoded (from ``relay.CommitRelay``)."""
        everything, by_robot = self._everything, self._by_robot
        for event in events:
            self._offer(event, [*everything, *(by_robot.get(event[0][1]) or ())])

    def publish_alert(self, event_type: str, robot_id: str, data: bytes) -> None:
        """An alert transition, from any process (``relay``), to the subscribers asking for its type and robot."""
        for subscriber in [*self._alerts]:
            robot_ids = subscriber.robot_ids
            if event_type in subscriber.event_types and (robot_ids is None or robot_id in robot_ids):
                self._offer((event_type, data), [subscriber])

    def _offer(self, event: Event | AlertNotice, subscribers: list[Subscriber]) -> None:
        for subscriber in subscribers:
            if subscriber.queue.qsize() >= self._queue_size:
                self._cut_off(subscriber, overflowed=True)
            else:
                subscriber.queue.put_nowait(event)

    def close(self) -> None:
        for subscriber in self._all_subscribers():
            self._cut_off(subscriber, overflowed=False)

    def _cut_off(self, subscriber: Subscriber, *, overflowed: bool) -> None:
        self.unsubscribe(subscriber)
        subscriber.overflowed = overflowed
        while not subscriber.queue.empty():  # what it has not read yet is dropped with it
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(None)
