"""The connection pool, and the connection types the other db modules take."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from app.settings import DatabaseSettings

if TYPE_CHECKING:
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
    # What a pool hands out (a proxy) and what asyncpg.connect returns: the db modules take either.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:  # asyncpg's classes are generic only in its stubs; Litestar resolves handler signatures at run time
    Pool = asyncpg.Pool
    Connection = asyncpg.Connection | PoolConnectionProxy


async def create_pool(settings: DatabaseSettings, max_size: int | None = None) -> Pool:
    """A pool of ``max_size`` connections (default: the read pool's size)."""
    size = settings.pool_max_size if max_size is None else max_size
    # statement_cache_size stays on: every statement here is a constant, so prepared plans are reused.
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=min(settings.pool_min_size, size),
        max_size=size,
        command_timeout=settings.query_timeout_ms / 1000,
    )
