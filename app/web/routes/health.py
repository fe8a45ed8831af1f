"""GET /: the service version and whether the database answers."""

from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.openapi import ResponseSpec

from app import __version__
from app.model.payloads import Health
from app.platform import pool
from app.web.deps import ControlPoolDep, SettingsDep, StorageDep


@get(
    "/",
    operation_id="getHealth",
    security=[{}],  # public: no credential needed
    tags=["health"],
    summary="Health",
    description=(
        "503 when the database does not answer. `storage` says which TimescaleDB edition serves and what of "
        "retention and compression is enabled."
    ),
    responses={503: ResponseSpec(Health, generate_examples=False, description="The database does not answer")},
)
async def health(control_pool: ControlPoolDep, settings: SettingsDep, storage: StorageDep) -> Response[Health]:
    # Not awaited past the timeout: with a frozen database even cancelling the query can wait.
    ping = asyncio.create_task(pool.ping(control_pool))
    done, _ = await asyncio.wait({ping}, timeout=settings.database.health_timeout_ms / 1000)
    if not done or ping.exception() is not None:
        ping.cancel()
        return Response(Health("degraded", __version__, "down", settings.auth.auth), status_code=503)
    return Response(Health("ok", __version__, "up", settings.auth.auth, storage))
