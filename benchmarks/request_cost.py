"""``python -m benchmarks.request_cost``: CPU per request of the whole app in process, authentication off vs on.

Direct ASGI calls of an empty POST /telemetry/ (answered without the database), 20,000 per round, so what is
measured is the HTTP-side path: routing, the guard, token verification from the cache, rate limiting, the body.
Needs the ``fleet_bench`` database (`make bench` creates it).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Litestar

from app.auth import provisioning as admin
from app.platform.pool import create_pool
from app.platform.settings import load_settings, replace_settings
from app.web.app import create_app

REQUESTS = 20_000
BODY = b"[]"


async def post_empty(app: Litestar, headers: list[tuple[bytes, bytes]]) -> int:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/telemetry/",
        "raw_path": b"/telemetry/",
        "root_path": "",
        "query_string": b"",
        "headers": [*headers, (b"content-type", b"application/json"), (b"content-length", b"2")],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 1234),
        "state": {},
    }
    statuses: list[int] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)  # type: ignore[arg-type]
    return statuses[0]


async def measure() -> None:
    base = load_settings()
    url = base.database.database_url.rsplit("/", 1)[0] + "/fleet_bench"
    # No rate limit here: the loop is far faster than any robot.
    settings = replace_settings(
        base, database_url=url, migrate_on_start=False, robot_requests_per_s=10**9, robot_burst=10**9
    )
    pool = await create_pool(settings.database, 1)
    token = (await admin.provision_robot(pool, admin.NewRobot("request-cost"))).token
    await pool.close()
    for auth in ("off", "on", "off", "on"):
        app = create_app(replace_settings(settings, auth=auth))
        async with app.lifespan():
            headers = [(b"authorization", f"Bearer {token}".encode())] if auth == "on" else []
            assert await post_empty(app, headers) == 200
            cpu = time.process_time()
            for _ in range(REQUESTS):
                await post_empty(app, headers)
            print(f"auth {auth}: {(time.process_time() - cpu) / REQUESTS * 1e6:.1f} us CPU per empty POST")


if __name__ == "__main__":
    asyncio.run(measure())
