"""The one paging convention of every list (`limit`, `cursor`, `next_cursor`), for lists answered in full."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from app.model.payloads import DailyActivity, RobotDistance, RobotState, StationaryRobot
from app.platform.cursors import ListPager, page_size
from app.platform.settings import Settings

T = TypeVar("T")

BY_ROBOT_STATE: ListPager[RobotState] = ListPager("robots", lambda s: (s.robot_id,), tuple[str])
# Lowest battery first, then by id, so equal levels keep a stable order across pages.
BY_BATTERY: ListPager[RobotState] = ListPager("low-battery", lambda s: (s.battery_level, s.robot_id), tuple[float, str])
BY_STATIONARY: ListPager[StationaryRobot] = ListPager("stationary", lambda s: (s.robot_id,), tuple[str])
BY_DISTANCE: ListPager[RobotDistance] = ListPager("distance", lambda s: (s.robot_id,), tuple[str])
BY_ACTIVITY: ListPager[DailyActivity] = ListPager("daily-activity", lambda s: (s.robot_id,), tuple[str])


def keyset_page_size(limit: int | None, settings: Settings) -> int:
    """The page size of a list the database answers page by page (history, alerts, rules, deliveries)."""
    return page_size(limit, settings.query.history_default_limit, settings.query.history_max_limit)


def list_page(
    pager: ListPager[T], items: Sequence[T], limit: int | None, cursor: str | None, settings: Settings
) -> tuple[list[T], str | None]:
    """One page of ``items`` and the cursor of the next, with the server's list limits."""
    size = page_size(limit, settings.query.list_default_limit, settings.query.list_max_limit)
    return pager.page(items, cursor, size)
