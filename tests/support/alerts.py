"""What the alert tests say to the API: rules, readings, alerts by robot, and waiting for a real process's round."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from tests.support.builders import reading

OPEN_WITHIN_S = 2.0  # the bound: an alert opens within 2 s of the commit or the deadline
SITE = {
    "type": "Polygon",
    "coordinates": [[[-122.31, 37.09], [-122.29, 37.09], [-122.29, 37.11], [-122.31, 37.11], [-122.31, 37.09]]],
}


async def eventually(check: Callable[[], Awaitable[Any]], within_s: float = OPEN_WITHIN_S) -> Any:
    """The first truthy answer of ``check``, polled until ``within_s``; fails with the last answer. For servers
    whose rounds run on their own (the system tier); the api tier runs rounds itself."""
    deadline = time.monotonic() + within_s
    while True:
        answer = await check()
        if answer or time.monotonic() > deadline:
            assert answer, f"not within {within_s} s: {answer!r}"
            return answer
        await asyncio.sleep(0.05)


async def create_rule(api: httpx.AsyncClient, condition: dict[str, Any], **scope: Any) -> dict[str, Any]:
    response = await api.post(
        "/alert-rules", json={"name": f"{condition['kind']} rule", "condition": condition, **scope}
    )
    assert response.status_code == 201, response.text
    rule: dict[str, Any] = response.json()
    return rule


async def alerts_of(api: httpx.AsyncClient, robot_id: str, **params: str) -> list[dict[str, Any]]:
    response = await api.get("/alerts", params={"robot_id": robot_id, **params})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["alerts"]
    return found


async def post(api: httpx.AsyncClient, robot_id: str, **fields: Any) -> None:
    response = await api.post("/telemetry", json=reading(robot_id, **fields))
    assert response.status_code in (200, 201), response.text


async def open_alerts(api: httpx.AsyncClient, robot_id: str) -> list[dict[str, Any]]:
    return [a for a in await alerts_of(api, robot_id) if a["state"] != "resolved"]


async def resolved_alerts(api: httpx.AsyncClient, robot_id: str) -> list[dict[str, Any]]:
    return await alerts_of(api, robot_id, state="resolved")


async def next_event(events: AsyncIterator[dict[str, str]]) -> dict[str, str]:
    """The next event, past comments and the retry advice."""
    async for event in events:
        if "event" in event:
            return event
    raise AssertionError("the stream ended")


async def followed(conn: asyncpg.Connection) -> None:
    """Until an alert round has followed every stored reading (the derived position is past them all)."""
    done = "SELECT derived_xid > coalesce((SELECT max(stored_xid) FROM telemetry), 0) FROM derived_state"
    await eventually(lambda: conn.fetchval(done), within_s=10)
