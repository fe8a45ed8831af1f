"""GET /: the service version and whether the database answers."""

from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.openapi import ResponseSpec

from app import __version__
from app.api.deps import PoolDep, SettingsDep
from app.db import robots
from app.schemas import Health


@get(
    "/",
    tags=["health"],
    summary="Health",
    description="503 when the database does not answer.",
    responses={503: ResponseSpec(Health, generate_examples=False, description="The database does not answer")},
)
async def health(pool: PoolDep, settings: SettingsDep) -> Response[Health]:
    try:
        async with asyncio.timeout(settings.database.health_timeout_ms / 1000):
            await robots.ping(pool)
    except Exception:  # any failure to answer, timeouts included, means "down"
        return Response(Health("degraded", __version__, "down", settings.auth.auth), status_code=503)
    return Response(Health("ok", __version__, "up", settings.auth.auth))
