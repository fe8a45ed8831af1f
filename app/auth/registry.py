"""The robot registry for the features above auth: each robot's key (registered on first sight, by a reading or
by provisioning), its tags and its broker login, and a robot's retirement inside a caller's transaction."""

from __future__ import annotations

from app.auth.store import (
    fetch_broker_accounts,
    fetch_robot_key,
    fetch_robot_tags,
    lock_robot_in,
    register_robots,
    retire_robot_in,
)

__all__ = [
    "fetch_broker_accounts",
    "fetch_robot_key",
    "fetch_robot_tags",
    "lock_robot_in",
    "register_robots",
    "retire_robot_in",
]
