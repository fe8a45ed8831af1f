"""GET /: the service version and whether the database answers."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get
from litestar.openapi import ResponseSpec

from app import __version__, queries
from app.schemas import Health
from app.state import get_services


@get(
    "/",
    tags=["health"],
    summary="Health",
    description="503 when the database does not answer.",
    responses={503: ResponseSpec(Health, generate_examples=False, description="The database does not answer")},
)
async def health(request: Request[Any, Any, Any]) -> Response[Health]:
    services = get_services(request)
    try:
        async with asyncio.timeout(services.settings.db_timeout_ms / 1000):
            await services.pool.fetchval(queries.PING)
    except (OSError, TimeoutError, Exception):
        return Response(Health("degraded", __version__, "down"), status_code=503)
    return Response(Health("ok", __version__, "up"))
