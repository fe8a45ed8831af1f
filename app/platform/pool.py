"""The connection pool, and the connection types the other db modules take."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from app.platform.settings import DatabaseSettings

if TYPE_CHECKING:
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
    # What a pool hands out (a proxy) and what asyncpg.connect returns: the db modules take either.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:  # asyncpg's classes are generic only in its stubs; Litestar resolves handler signatures at run time
    Pool = asyncpg.Pool
    Connection = asyncpg.Connection | PoolConnectionProxy


async def create_pool(settings: DatabaseSettings, max_size: int | None = None, *, keep_sessions: bool = False) -> Pool:
    """A pool of ``max_size`` connections (default: the read pool's size).

    ``keep_sessions``: a connection goes back to the pool without asyncpg's reset statement (advisory locks,
    cursors, LISTEN and settings), one round trip fewer per use; an open transaction is still rolled back. Only for
    a pool whose users leave no such state behind: the ingest pool, where it was one of a flush's eight round trips.
    """
    size = settings.pool_max_size if max_size is None else max_size
    # statement_cache_size stays on: every statement here is a constant, so prepared plans are reused.
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=min(settings.pool_min_size, size),
        max_size=size,
        command_timeout=settings.query_timeout_ms / 1000,
        reset=_keep_session if keep_sessions else None,
    )


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """asyncpg has rolled back an open transaction already; nothing else to undo."""


PING = "SELECT 1"


async def ping(pool: Pool) -> None:
    """Whether the database answers (raises if not)."""
    await pool.fetchval(PING)
