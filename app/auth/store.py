"""Credentials at rest: hashed tokens, their robot or scopes, rotation, revocation and the change epoch."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from app.auth import queries as sql
from app.model.errors import Conflict
from app.model.payloads import CredentialInfo
from app.platform.pool import Connection, Pool


class StoredCredential:
    """A live credential as the authenticator needs it."""

    __slots__ = ("credential_id", "expires_at", "fleet_tag", "kind", "name", "robot_id", "robot_ids", "scopes")

    def __init__(
        self,
        credential_id: int,
        kind: str,
        name: str,
        scopes: Sequence[str],
        robot_ids: Sequence[str] | None,
        fleet_tag: str | None,
        expires_at: datetime | None,
        robot_id: str | None,
    ) -> None:
        self.credential_id, self.kind, self.name, self.scopes = credential_id, kind, name, scopes
        self.robot_ids, self.fleet_tag, self.expires_at, self.robot_id = robot_ids, fleet_tag, expires_at, robot_id


async def fetch_live_credential(pool: Pool, token_hash: bytes) -> StoredCredential | None:
    row = await pool.fetchrow(sql.SELECT_CREDENTIAL_BY_HASH, token_hash)
    return None if row is None else StoredCredential(*row)


async def fetch_live_credentials(pool: Pool, limit: int) -> list[tuple[bytes, StoredCredential]]:
    """The ``limit`` newest live credentials, each with its token's hash."""
    return [(row[0], StoredCredential(*row[1:])) for row in await pool.fetch(sql.SELECT_LIVE_CREDENTIALS, limit)]


async def fetch_live_ids(pool: Pool, credential_ids: Sequence[int]) -> set[int]:
    """Those of ``credential_ids`` that are neither revoked nor expired."""
    return {row[0] for row in await pool.fetch(sql.SELECT_LIVE_CREDENTIAL_IDS, list(credential_ids))}


async def fetch_broker_accounts(pool: Pool) -> list[tuple[str, str]]:
    """Each robot with a live token the broker can check: its id and that token's broker hash."""
    return [(row[0], row[1]) for row in await pool.fetch(sql.SELECT_BROKER_ACCOUNTS)]


async def fetch_epoch(pool: Pool) -> int:
    epoch: int = await pool.fetchval(sql.SELECT_CREDENTIAL_EPOCH)
    return epoch


async def fetch_robots_without_skeleton(pool: Pool) -> list[tuple[int, str]]:
    return [(row[0], row[1]) for row in await pool.fetch(sql.SELECT_ROBOTS_WITHOUT_SKELETON)]


async def store_skeletons(pool: Pool, skeletons: Sequence[tuple[int, str]]) -> None:
    """Robots' id skeletons, by robot key."""
    await pool.execute(sql.SET_ROBOT_SKELETONS, [key for key, _ in skeletons], [s for _, s in skeletons])


async def provision_robot(
    pool: Pool,
    robot_id: str,
    id_skeleton: str,
    tags: Sequence[str],
    token_hash: bytes,
    token_prefix: str,
    broker_hash: str,
) -> tuple[int, datetime]:
    """Register (or re-tag) the robot and store its first token; returns the credential's id and creation time.
    Conflict if another robot's id has the same skeleton, or this one has a working token already."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(sql.LOCK_PROVISIONING)
        lookalike = await conn.fetchval(sql.SELECT_LOOKALIKE_ROBOT, id_skeleton, robot_id)
        if lookalike is not None:
            raise Conflict(f"robot id {robot_id!r} looks like robot {lookalike!r}'s (Unicode confusables)")
        robot_key = await conn.fetchval(sql.PROVISION_ROBOT, robot_id, list(tags), id_skeleton)
        if await conn.fetchval(sql.SELECT_LIVE_ROBOT_TOKEN, robot_key):
            raise Conflict(
                f"robot {robot_id} is provisioned already: rotate its token (POST /admin/robots/{{robot_id}}/tokens)"
                " or decommission it (DELETE /admin/robots/{robot_id}) first"
            )
        row = await conn.fetchrow(
            sql.INSERT_CREDENTIAL, "robot", robot_id, robot_key, [], None, None, token_hash, token_prefix, broker_hash
        )
    assert row is not None
    return row["credential_id"], row["created_at"]


async def rotate_robot_token(
    pool: Pool, robot_id: str, token_hash: bytes, token_prefix: str, broker_hash: str, old_expire_at: datetime
) -> tuple[int, datetime] | None:
    """A new token for a provisioned robot; its live tokens expire at ``old_expire_at``. None: unknown robot."""
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchrow(sql.SELECT_ROBOT_KEY_AND_TAGS, robot_id)
        if found is None:
            return None
        await conn.execute(sql.EXPIRE_ROBOT_TOKENS, found["robot_key"], old_expire_at)
        row = await conn.fetchrow(
            sql.INSERT_CREDENTIAL,
            "robot",
            robot_id,
            found["robot_key"],
            [],
            None,
            None,
            token_hash,
            token_prefix,
            broker_hash,
        )
        await conn.execute(sql.BUMP_CREDENTIAL_EPOCH)
    assert row is not None
    return row["credential_id"], row["created_at"]


async def lock_robot_in(conn: Connection, robot_id: str) -> int | None:
    """In the caller's transaction: the robot's key, its row locked until the transaction ends; None if unknown."""
    robot_key: int | None = await conn.fetchval(sql.LOCK_ROBOT, robot_id)
    return robot_key


async def retire_robot_in(conn: Connection, robot_key: int, delete_robot: bool) -> None:
    """In the caller's transaction: revoke the robot's tokens (and, if asked, forget the robot and its
    credentials); every process reloads its credentials."""
    await conn.execute(sql.REVOKE_ROBOT_TOKENS, robot_key)
    if delete_robot:
        await conn.execute(sql.DELETE_ROBOT, robot_key)
    await conn.execute(sql.BUMP_CREDENTIAL_EPOCH)


async def insert_key(
    pool: Pool,
    name: str,
    scopes: Sequence[str],
    robot_ids: Sequence[str] | None,
    fleet_tag: str | None,
    token_hash: bytes,
    token_prefix: str,
) -> tuple[int, datetime]:
    row = await pool.fetchrow(
        sql.INSERT_CREDENTIAL,
        "key",
        name,
        None,
        list(scopes),
        None if robot_ids is None else list(robot_ids),
        fleet_tag,
        token_hash,
        token_prefix,
        None,  # keys do not connect to the broker
    )
    assert row is not None
    return row["credential_id"], row["created_at"]


async def revoke_credential(pool: Pool, credential_id: int) -> bool:
    """Revoke it now, and tell every process; False if there was no such live credential."""
    async with pool.acquire() as conn, conn.transaction():
        revoked = await conn.fetchval(sql.REVOKE_CREDENTIAL, credential_id)
        if revoked is not None:
            await conn.execute(sql.BUMP_CREDENTIAL_EPOCH)
    return revoked is not None


async def fetch_credentials(pool: Pool) -> list[CredentialInfo]:
    return [CredentialInfo(*row) for row in await pool.fetch(sql.SELECT_CREDENTIALS)]


async def fetch_robot_tags(pool: Pool, robot_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Provisioned (or registered) robots among ``robot_ids`` (all when None), with their tags."""
    if robot_ids is None:
        rows = await pool.fetch(sql.SELECT_ALL_ROBOT_TAGS)
    else:
        rows = await pool.fetch(sql.SELECT_ROBOT_TAGS, list(robot_ids))
    return {row["robot_id"]: row["tags"] for row in rows}


# --- the robot registry ---------------------------------------------------------------------------------------


async def fetch_robot_key(pool: Pool, robot_id: str) -> tuple[int, list[str]] | None:
    """The robot's key and tags, or None for a robot never seen."""
    row = await pool.fetchrow(sql.SELECT_ROBOT_KEY_AND_TAGS, robot_id)
    return None if row is None else (row["robot_key"], row["tags"])


async def register_robots(conn: Connection, robot_ids: Collection[str]) -> dict[str, int]:
    """Register the robots not yet known and return every given robot's key.

    Pass the ids sorted: concurrent registrations then lock the unique index in one order."""
    await conn.execute(sql.REGISTER_ROBOTS, list(robot_ids))
    return {record["robot_id"]: record["robot_key"] for record in await conn.fetch(sql.SELECT_ROBOT_KEYS, robot_ids)}
