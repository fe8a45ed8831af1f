"""Credentials across processes, on real time: a revocation reaches another process within a second, and a
fleet's tokens are verified from each process's loaded credentials, reloaded after every change."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import REGISTRY

from app.model.errors import ErrorKind
from app.platform.settings import Settings
from tests.support.auth import bearer, issue_key, issue_robot
from tests.support.builders import reading
from tests.support.problems import assert_problem
from tests.support.servers import serve_in_process

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


async def test_revocation_reaches_another_process_within_a_second(
    auth_settings: Settings, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    async with serve_in_process(auth_settings) as first, serve_in_process(auth_settings) as second:
        admin_key = await issue_key(pool, "ops", "admin")
        reader = await issue_key(pool, "reader", "read")
        assert (await second.get("/robots", headers=bearer(reader))).status_code == 200  # now cached there
        listing = (await first.get("/admin/credentials", headers=bearer(admin_key))).json()
        [reader_id] = [c["credential_id"] for c in listing if c["name"] == "reader"]
        revoked_at = time.monotonic()
        assert (await first.delete(f"/admin/credentials/{reader_id}", headers=bearer(admin_key))).status_code == 204
        while (await second.get("/robots", headers=bearer(reader))).status_code == 200:
            assert time.monotonic() - revoked_at < 1.0, "the other process still accepts the revoked key"
            await asyncio.sleep(0.02)
        assert_problem(await first.get("/robots", headers=bearer(reader)), ErrorKind.UNAUTHENTICATED)


def credential_lookups() -> float:
    return REGISTRY.get_sample_value("fleet_credential_lookups_total") or 0.0


async def test_a_fleets_tokens_are_verified_without_a_database_look_up(
    auth_settings: Settings, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    """Each process loads the live credentials at start and again after every change: no robot's first request
    waits for a look-up, and a revocation elsewhere does not leave the cache cold. A token issued since is looked
    up once."""
    robots = [f"preload-{i}" for i in range(20)]
    tokens = [await issue_robot(pool, robot_id) for robot_id in robots]
    async with serve_in_process(auth_settings) as client:
        before = credential_lookups()
        for i, (robot_id, token) in enumerate(zip(robots, tokens, strict=True)):
            posted = await client.post("/telemetry/", json=reading(robot_id, NOW), headers=bearer(token))
            assert posted.status_code == 200, i
        assert credential_lookups() == before
        late = await issue_robot(pool, "preload-late")  # as another process would: this one has not loaded it
        for _ in range(2):
            posted = await client.post("/telemetry/", json=reading("preload-late", NOW), headers=bearer(late))
            assert posted.status_code == 200
        assert credential_lookups() == before + 1
        await conn.execute("UPDATE credentials SET revoked_at = now() WHERE name = $1", robots[0])
        await conn.execute("UPDATE credential_epoch SET epoch = epoch + 1")
        deadline = time.monotonic() + 10
        revoked = reading(robots[0], NOW + timedelta(seconds=1))
        while (await client.post("/telemetry/", json=revoked, headers=bearer(tokens[0]))).status_code != 401:
            assert time.monotonic() < deadline, "the revoked token still works"
            await asyncio.sleep(0.05)  # until the poll (every 100 ms here) has loaded the credentials anew
        after_change = credential_lookups()  # the revoked token, unknown now, was looked up
        for robot_id, token in [*zip(robots[1:], tokens[1:], strict=True), ("preload-late", late)]:
            later = NOW + timedelta(seconds=1)
            assert (await client.post("/telemetry/", json=reading(robot_id, later), headers=bearer(token))).is_success
        assert credential_lookups() == after_change  # the late token too is among those loaded after the change
        admin_key = await issue_key(pool, "ops", "admin")
        provisioned = await client.post("/admin/robots", json={"robot_id": "preload-new"}, headers=bearer(admin_key))
        assert provisioned.status_code == 201
        after_provisioning = credential_lookups()  # the admin key's first use
        for robot_id, token in zip(robots[1:], tokens[1:], strict=True):  # provisioning here kept the cache
            later = NOW + timedelta(seconds=2)
            assert (await client.post("/telemetry/", json=reading(robot_id, later), headers=bearer(token))).is_success
        assert credential_lookups() == after_provisioning
