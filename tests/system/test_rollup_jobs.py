"""The rollups' background pass, on real time: on, the service's first pass runs at start-up; off, none runs."""

from __future__ import annotations

import asyncio

import asyncpg

from app.platform.settings import Settings, replace_settings
from tests.support.servers import serve_in_process


async def test_rollups_off_runs_no_pass(settings: Settings, conn: asyncpg.Connection) -> None:
    # On, the service's first pass runs at start-up and moves the watermark; off, it stays where it was.
    for enabled in (True, False):
        await conn.execute("UPDATE rollup_state SET rolled_up_xid = NULL")
        async with serve_in_process(replace_settings(settings, rollups=enabled)) as http:
            assert (await http.get("/")).status_code == 200
            for _ in range(50):
                if await conn.fetchval("SELECT rolled_up_xid IS NOT NULL FROM rollup_state"):
                    break
                await asyncio.sleep(0.05)
            assert await conn.fetchval("SELECT rolled_up_xid IS NOT NULL FROM rollup_state") is enabled
