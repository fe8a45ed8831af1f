"""A robot's retirement from the fleet, in one transaction across the features: its tokens revoked, its open
alerts resolved, out of the latest state, and its history kept or deleted as asked."""

from __future__ import annotations

from app.alerts import lifecycle as alerts
from app.auth import registry
from app.auth.provisioning import checked_robot_id
from app.model.errors import UnknownRobot
from app.platform.pool import Pool
from app.telemetry import history

RESOLUTION = "robot decommissioned"


async def decommission_robot(pool: Pool, robot_id: str, delete_history: bool) -> None:
    """Provisioning the id again later starts it afresh; UnknownRobot if there is no such robot."""
    robot_id = checked_robot_id(robot_id)
    async with pool.acquire() as conn, conn.transaction():
        robot_key = await registry.lock_robot_in(conn, robot_id)
        if robot_key is None:
            raise UnknownRobot(robot_id)
        await alerts.retire_robot_in(conn, robot_id, RESOLUTION, delete_history)
        await history.forget_robot_in(conn, robot_key, delete_history)
        # Last: the robot's row goes with its history, and its credentials by cascade.
        await registry.retire_robot_in(conn, robot_key, delete_robot=delete_history)
