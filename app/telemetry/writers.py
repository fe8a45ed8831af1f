"""Who may write which readings: a robot's token only its own robot, an ingest key only provisioned robots within
its limits. Checked before a request is queued, so nothing of a refused request is stored."""

from __future__ import annotations

from collections.abc import Sequence

from app.auth import registry as credentials
from app.model.errors import Forbidden
from app.model.payloads import FieldError
from app.model.principal import Principal, Scope
from app.model.reading import Row
from app.platform.pool import Pool
from app.telemetry.decoding import MAX_LISTED_ERRORS


class WriterCheck:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        # robot_id -> tags of provisioned robots, for the ingest-key check; emptied when credentials change.
        self._provisioned: dict[str, list[str]] = {}

    def forget(self) -> None:
        self._provisioned.clear()

    async def check(self, writer: Principal, rows: Sequence[Row]) -> None:
        if writer.robot_id is not None:
            own = writer.robot_id
            refused = [index for index, row in enumerate(rows) if row[0] != own]
            if refused:
                raise _refused(rows, refused, f"this token writes only robot {own!r}")
            return
        writer.require(Scope.INGEST)
        provisioned = self._provisioned
        robot_ids = {row[0] for row in rows}
        unknown = robot_ids - provisioned.keys()
        if unknown:
            provisioned.update(await credentials.fetch_robot_tags(self._pool, sorted(unknown)))
        # Checked once per robot, not per row: a gateway's batch holds many readings of few robots.
        barred = {
            robot_id
            for robot_id in robot_ids
            if robot_id not in provisioned or (writer.limited and not writer.sees(robot_id, provisioned[robot_id]))
        }
        if barred:
            refused = [index for index, row in enumerate(rows) if row[0] in barred]
            raise _refused(rows, refused, "robot is not provisioned, or not within this key's robots")


def _refused(rows: Sequence[Row], indexes: list[int], message: str) -> Forbidden:
    listed = [
        FieldError(field=f"$[{i}].robot_id", message=f"{message}: {rows[i][0]!r}", index=i)
        for i in indexes[:MAX_LISTED_ERRORS]
    ]
    return Forbidden(f"{len(indexes)} reading(s) refused; nothing from this request was stored", errors=listed)
