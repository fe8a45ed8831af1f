"""GET /telemetry/stream: committed readings as Server-Sent Events, from the ingest fan-out; a client that
reconnects with Last-Event-ID is first sent what it missed, from the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args

from litestar import get
from litestar.params import HeaderParameter, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.auth.visibility import visible_robot_ids
from app.model.alert import EventType
from app.model.errors import ErrorKind
from app.model.principal import Scope
from app.platform.cursors import Position, decode_position, encode_position
from app.platform.settings import StreamSettings
from app.telemetry import history as telemetry
from app.telemetry.fanout import READING_EVENT, Broadcaster, Subscriber, encode_reading
from app.web.deps import BroadcasterDep, LimitsDep, PoolDep, PrincipalDep, SettingsDep
from app.web.guard import SCOPE_OPT
from app.web.openapi import StreamOperation
from app.web.problems import AUTH_ERRORS, problem_responses

HEARTBEAT_S = 15.0  # a comment line this often keeps idle proxies from closing the stream
RETRY_MS = 2000  # what a browser's EventSource waits before it reconnects

StreamEvent = Literal["reading", EventType]  # a reading, or an alert event (app.model.alert)
STREAM_EVENTS = frozenset(get_args(StreamEvent))
Replay = tuple[list[tuple[Position, bytes]], bool]  # the missed readings, and whether some were left out


def _reading(position: Position, data: bytes) -> ServerSentEventMessage:
    return ServerSentEventMessage(event="reading", data=data.decode(), id=encode_position(position))


async def _events(
    broadcaster: Broadcaster, subscriber: Subscriber, replay: Replay, release: Callable[[], None]
) -> AsyncIterator[ServerSentEventMessage]:
    try:
        yield ServerSentEventMessage(data=None, comment="subscribed", retry=RETRY_MS)
        missed, truncated = replay
        if truncated:
            yield ServerSentEventMessage(event="gap", data="missed more than the resume bound; read the history")
        replayed = set()
        for position, data in missed:
            replayed.add(position)
            yield _reading(position, data)
        while True:
            try:
                item = await asyncio.wait_for(subscriber.queue.get(), timeout=HEARTBEAT_S)
            except TimeoutError:
                yield ServerSentEventMessage(data=None, comment="heartbeat")
                continue
            if item is None:
                if subscriber.overflowed:
                    yield ServerSentEventMessage(event="overflow", data="fell too far behind; reconnect")
                return
            key, data = item
            if isinstance(key, str):  # an alert transition
                yield ServerSentEventMessage(event=key, data=data.decode())
            elif key not in replayed:  # committed while the replay was read: sent once, from there
                yield _reading(key, data)
    finally:
        broadcaster.unsubscribe(subscriber)
        release()


@get(
    "/telemetry/stream",
    operation_id="streamReadings",
    responses=problem_responses(ErrorKind.RATE_LIMITED, ErrorKind.BAD_CURSOR, *AUTH_ERRORS),
    opt={SCOPE_OPT: Scope.STREAM},
    operation_class=StreamOperation,
    tags=["live and export"],
    summary="Live readings and alert transitions as Server-Sent Events, resumable with Last-Event-ID",
    description=(
        "Event types: `reading`, `alert.opened`, `alert.acknowledged`, `alert.resolved` (`events` picks some; "
        "all by default). An alert event's data is the alert, as `GET /alerts/{alert_id}` returns it; alert "
        "events carry no `id:`, and are not replayed on resume (read `GET /alerts` for what was missed). "
        "Each `reading` event is a stored reading, sent after its commit, with an `id:`. A client that "
        "reconnects with `Last-Event-ID` (browsers' EventSource does it by itself) is first sent the readings "
        "it missed, from the database: those stored at most FLEET_STREAM_RESUME_WINDOW_S (300 s) ago, at most "
        "FLEET_STREAM_RESUME_MAX_READINGS (10,000); past either bound a `gap` event comes first. A subscriber "
        "that falls behind gets an `overflow` event and is disconnected; ingest never waits for it."
    ),
)
async def stream_telemetry(
    broadcaster: BroadcasterDep,
    pool: PoolDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    limits: LimitsDep,
    robot_id: Annotated[str | None, Parameter(description="Only this robot's readings and alerts.")] = None,
    events: Annotated[
        list[StreamEvent] | None,
        Parameter(description="Only these event types (repeat the parameter for several); default: all."),
    ] = None,
    last_event_id: Annotated[
        str | None,
        HeaderParameter(name="Last-Event-ID", description="The id of the last event received, to resume after it."),
    ] = None,
) -> ServerSentEvent:
    after = decode_position(last_event_id) if last_event_id else None
    # A key limited to some robots streams those visible when it subscribes.
    visible = await visible_robot_ids(pool, principal)
    if robot_id is not None:
        robot_ids: frozenset[str] | None = (
            frozenset({robot_id}) & visible if visible is not None else frozenset({robot_id})
        )
    else:
        robot_ids = visible
    client = principal.credential_id
    limits.subscribers.acquire(client)
    # Subscribed before the replay is read, so a reading committed meanwhile is in one or the other.
    event_types = frozenset(events or STREAM_EVENTS)
    subscriber = broadcaster.subscribe(robot_ids, event_types)
    try:
        replay: Replay = ([], False)
        if after is not None and READING_EVENT in event_types:
            replay = await _read_replay(pool, settings.stream, after, robot_ids)
    except BaseException:  # no stream after all: nothing may stay subscribed or counted
        broadcaster.unsubscribe(subscriber)
        limits.subscribers.release(client)
        raise
    return ServerSentEvent(_events(broadcaster, subscriber, replay, lambda: limits.subscribers.release(client)))


async def _read_replay(
    pool: PoolDep, settings: StreamSettings, after: Position, robot_ids: frozenset[str] | None
) -> Replay:
    oldest = datetime.now(UTC) - timedelta(seconds=settings.stream_resume_window_s)
    limit = settings.stream_resume_max_readings
    found = await telemetry.fetch_stored_since(pool, after, oldest, robot_ids, limit + 1)
    truncated = after[0] < oldest or len(found) > limit
    return [(position, encode_reading(reading)) for position, reading in found[:limit]], truncated
