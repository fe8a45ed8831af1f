"""Provisioning: robots and their tokens, operator keys and their scopes, rotation and revocation.

Used by the admin API and by ``python -m app.cli.admin``; every secret is returned once and stored only as a hash.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from msgspec import Meta

from app.auth import store as credentials
from app.auth.lookalikes import skeleton
from app.auth.tokens import broker_hash, generate_token, hash_token, shown_prefix
from app.model.errors import BadParameter, UnknownRobot
from app.model.payloads import CredentialInfo, IssuedCredential
from app.model.principal import KEY_SCOPES, Scope, Tag
from app.model.reading import NO_NUL, ROBOT_ID_RULE, RobotId, normalize_robot_id
from app.platform.pool import Pool

ScopeName = Annotated[
    str,
    Meta(
        pattern="^(read|stream|export|ingest|operate|admin)$",
        description="read, stream, export, ingest, operate (acknowledge alerts) or admin (only for a key not "
        "limited to robots or a tag).",
    ),
]


class NewRobot(msgspec.Struct, forbid_unknown_fields=True):
    robot_id: RobotId
    tags: Annotated[list[Tag], Meta(max_length=16)] = msgspec.field(default_factory=list)


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
    scopes: Annotated[list[ScopeName], Meta(min_length=1, max_length=6)]
    robot_ids: Annotated[list[RobotId], Meta(min_length=1, max_length=10_000)] | None = None
    fleet_tag: Tag | None = None


def checked_robot_id(raw: str) -> str:
    """The robot id, normalised; BadParameter if it breaks the robot-id rule."""
    robot_id = normalize_robot_id(raw)
    if robot_id is None:
        raise BadParameter(ROBOT_ID_RULE)
    return robot_id


async def provision_robot(pool: Pool, new: NewRobot) -> IssuedCredential:
    robot_id = checked_robot_id(new.robot_id)
    # Robots that reported without being provisioned (authentication off) get their skeletons first.
    if missing := await credentials.fetch_robots_without_skeleton(pool):
        await credentials.store_skeletons(pool, [(key, skeleton(other)) for key, other in missing])
    token = generate_token("robot")
    credential_id, created_at = await credentials.provision_robot(
        pool,
        robot_id,
        skeleton(robot_id),
        sorted(set(new.tags)),
        hash_token(token),
        shown_prefix(token),
        broker_hash(token),
    )
    return IssuedCredential(credential_id, "robot", robot_id, token, shown_prefix(token), created_at, robot_id=robot_id)


async def rotate_robot_token(pool: Pool, robot_id: str, grace_s: int) -> IssuedCredential:
    """A new token; the robot's current ones keep working for ``grace_s`` seconds, then stop."""
    robot_id = checked_robot_id(robot_id)
    token = generate_token("robot")
    old_expire_at = datetime.now(UTC) + timedelta(seconds=grace_s)
    issued = await credentials.rotate_robot_token(
        pool, robot_id, hash_token(token), shown_prefix(token), broker_hash(token), old_expire_at
    )
    if issued is None:
        raise UnknownRobot(robot_id)
    credential_id, created_at = issued
    return IssuedCredential(
        credential_id,
        "robot",
        robot_id,
        token,
        shown_prefix(token),
        created_at,
        robot_id=robot_id,
        expires_previous_at=old_expire_at,
    )


async def create_key(pool: Pool, new: NewKey) -> IssuedCredential:
    known = {scope.value for scope in KEY_SCOPES}
    unknown = sorted(set(new.scopes) - known)
    if unknown:
        raise BadParameter(f"unknown scope(s) {unknown}; a key's scopes are {sorted(known)}")
    robot_ids = None if new.robot_ids is None else sorted({checked_robot_id(r) for r in new.robot_ids})
    if Scope.ADMIN.value in new.scopes and (robot_ids is not None or new.fleet_tag is not None):
        # Admin routes act on the whole fleet (keys, robots, rules, webhooks): a limited admin key would reach
        # past its limit, and could mint a key broader than itself.
        raise BadParameter("a key limited to robot_ids or a fleet_tag cannot hold the admin scope")
    token = generate_token("key")
    scopes = sorted(set(new.scopes))
    credential_id, created_at = await credentials.insert_key(
        pool, new.name, scopes, robot_ids, new.fleet_tag, hash_token(token), shown_prefix(token)
    )
    return IssuedCredential(credential_id, "key", new.name, token, shown_prefix(token), created_at, scopes=scopes)


async def revoke(pool: Pool, credential_id: int) -> None:
    if not await credentials.revoke_credential(pool, credential_id):
        raise BadParameter(f"no live credential {credential_id}")


async def list_credentials(pool: Pool) -> list[CredentialInfo]:
    return await credentials.fetch_credentials(pool)
