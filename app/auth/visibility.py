"""What a principal may see: one robot by id, and the visible part of any fleet-wide answer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from app.auth import store as credentials
from app.model.errors import UnknownRobot
from app.model.payloads import RobotState
from app.model.principal import Principal
from app.platform.pool import Pool

T = TypeVar("T")


async def resolve_robot(pool: Pool, principal: Principal, robot_id: str) -> int:
    """The robot's key; UnknownRobot if it was never seen or lies outside the principal's robots (a limited key
    learns nothing of robots it may not see, not even that they exist)."""
    found = await credentials.fetch_robot_key(pool, robot_id)
    if found is None or (principal.limited and not principal.sees(robot_id, found[1])):
        raise UnknownRobot(robot_id)
    return found[0]


async def visible_robot_ids(pool: Pool, principal: Principal) -> frozenset[str] | None:
    """The robots a limited key may see now; None for a principal that sees the whole fleet."""
    if not principal.limited:
        return None
    return frozenset(await visible_robot_tags(pool, principal))


async def visible_robot_tags(pool: Pool, principal: Principal) -> dict[str, list[str]]:
    """A limited key's robots, with their tags (not for a principal that sees the whole fleet)."""
    tags = await credentials.fetch_robot_tags(pool, sorted(principal.robot_ids) if principal.robot_ids else None)
    return {robot_id: robot_tags for robot_id, robot_tags in tags.items() if principal.sees(robot_id, robot_tags)}


async def keep_visible(
    pool: Pool, principal: Principal, items: Iterable[T], robot_id_of: Callable[[T], str]
) -> list[T]:
    visible = await visible_robot_ids(pool, principal)
    return list(items) if visible is None else [item for item in items if robot_id_of(item) in visible]


def visible_states(principal: Principal, states: list[RobotState]) -> list[RobotState]:
    """Latest states carry their tags, so a limited key's view needs no further query."""
    if not principal.limited:
        return states
    return [state for state in states if principal.sees(state.robot_id, state.tags)]
