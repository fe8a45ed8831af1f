"""The rollups' periods and the state a query reads them in: pure, so the features that query rollups share them
without touching the rollups' store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MINUTE = timedelta(minutes=1)
PERIOD = timedelta(minutes=15)  # telemetry_15m's, as sql.PERIOD
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RollupState:
    rolled_up_xid: int | None  # telemetry_15m holds every reading stored below this position, no other; None: none
    status_gap_s: int | None  # the status gap telemetry_15m holds; None: not rolled up yet
    refreshed_xid: int | None  # telemetry_1m's last refresh saw every reading stored below this; None: never ran
    refreshed_to: datetime | None  # and materialized the minutes before this


def floor_to(t: datetime, width: timedelta) -> datetime:
    return t - (t - _EPOCH) % width


def ceil_to(t: datetime, width: timedelta) -> datetime:
    floor = floor_to(t, width)
    return floor if floor == t else floor + width
