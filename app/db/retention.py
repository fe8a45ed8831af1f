"""Data lifecycle: which TimescaleDB edition serves, and dropping the chunks older than a cutoff."""

from __future__ import annotations

from datetime import datetime

from app.db import sql
from app.db.pool import Pool


async def drop_chunks_before(pool: Pool, cutoff: datetime) -> int | None:
    """Drop every chunk whose readings are all older than ``cutoff``; the number dropped, or None when another
    process is doing it right now."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(sql.TRY_RETENTION_LOCK):
            return None
        dropped: int = await conn.fetchval(sql.DROP_OLD_CHUNKS, cutoff)
        return dropped


async def fetch_timescaledb_license(pool: Pool) -> str:
    """``apache`` (what Debian builds: no compression, continuous aggregates or policies) or ``timescale``."""
    license_name: str = await pool.fetchval(sql.SHOW_TIMESCALEDB_LICENSE)
    return license_name
