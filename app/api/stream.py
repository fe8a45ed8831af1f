"""GET /telemetry/stream: committed readings as Server-Sent Events, from the ingest fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from litestar import get
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.api.auth import SCOPE_OPT
from app.api.deps import BroadcasterDep, LimitsDep, PoolDep, PrincipalDep
from app.api.openapi import StreamOperation
from app.api.params import ex
from app.api.problems import AUTH_ERRORS, problem_responses
from app.auth.access import visible_robot_ids
from app.auth.principals import Scope
from app.errors import ErrorKind
from app.ingest.fanout import Broadcaster, Subscriber

HEARTBEAT_S = 15.0  # a comment line this often keeps idle proxies from closing the stream


async def _events(
    broadcaster: Broadcaster, subscriber: Subscriber, release: Callable[[], None]
) -> AsyncIterator[ServerSentEventMessage]:
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
        release()


@get(
    "/telemetry/stream",
    operation_id="streamReadings",
    responses=problem_responses(ErrorKind.RATE_LIMITED, *AUTH_ERRORS),
    opt={SCOPE_OPT: Scope.STREAM},
    operation_class=StreamOperation,
    tags=["live and export"],
    summary="Live readings as Server-Sent Events",
    description=(
        "Each `reading` event is a stored reading, sent after its commit. A subscriber that falls behind gets "
        "an `overflow` event and is disconnected; ingest never waits for it."
    ),
)
async def stream_telemetry(
    broadcaster: BroadcasterDep,
    pool: PoolDep,
    principal: PrincipalDep,
    limits: LimitsDep,
    robot_id: Annotated[str | None, Parameter(description="Only this robot's readings.", examples=ex("R2-D2"))] = None,
) -> ServerSentEvent:
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
    return ServerSentEvent(
        _events(broadcaster, broadcaster.subscribe(robot_ids), lambda: limits.subscribers.release(client))
    )
