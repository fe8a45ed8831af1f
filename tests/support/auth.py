"""Credentials for tests: issue robot tokens and operator keys through the admin domain, as an operator would."""

from __future__ import annotations

from app.auth import provisioning as admin
from app.platform.pool import Pool


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def issue_key(pool: Pool, name: str, *scopes: str, **limits: object) -> str:
    new = admin.NewKey(name, list(scopes), **limits)  # type: ignore[arg-type]
    return (await admin.create_key(pool, new)).token


async def issue_robot(pool: Pool, robot_id: str, *tags: str) -> str:
    return (await admin.provision_robot(pool, admin.NewRobot(robot_id, list(tags)))).token
