"""An operator key for one `make simulate` run, made straight on the local database as `make admin-key` makes one,
and revoked when the run ends: a new user's first simulation needs no key of their own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from app.auth import provisioning as admin
from app.platform.pool import create_pool
from app.platform.settings import load_settings

SCOPES = ["admin", "read", "stream"]  # provision robots, verify what they sent, watch alerts (--incidents)


async def _create() -> tuple[int, str]:
    pool = await create_pool(load_settings().database, 1)
    try:
        issued = await admin.create_key(pool, admin.NewKey("simulator (make simulate)", SCOPES))
    finally:
        await pool.close()
    return issued.credential_id, issued.token


async def _revoke(credential_id: int) -> None:
    pool = await create_pool(load_settings().database, 1)
    try:
        await admin.revoke(pool, credential_id)
    finally:
        await pool.close()


@contextmanager
def local_admin_key() -> Iterator[str]:
    """A key with the simulator's scopes for the length of the block. OSError (and asyncpg's errors) if the
    database named by FLEET_DATABASE_URL cannot be reached."""
    credential_id, token = asyncio.run(_create())
    try:
        yield token
    finally:
        asyncio.run(_revoke(credential_id))
