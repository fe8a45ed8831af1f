"""Who a verified credential speaks for, and what it may do: scopes, and the robots it may see or write."""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated

from msgspec import Meta

from app.model.errors import Forbidden

# A fleet tag, on robots, limited keys and alert rules.
Tag = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Scope(enum.Enum):
    READ = "read"  # history, robots, fleet questions
    STREAM = "stream"  # the live stream
    EXPORT = "export"  # CSV export
    INGEST = "ingest"  # write readings for provisioned robots (a gateway)
    OPERATE = "operate"  # act on alerts (acknowledge): a write, so not part of read
    ADMIN = "admin"  # robots, keys, rules and webhooks: the whole fleet, so only for keys not limited
    WRITE_OWN = "write-own"  # a robot's token: its own readings, nothing else


KEY_SCOPES = frozenset({Scope.READ, Scope.STREAM, Scope.EXPORT, Scope.INGEST, Scope.OPERATE, Scope.ADMIN})


@dataclass(frozen=True, slots=True)
class Principal:
    credential_id: int
    name: str
    scopes: frozenset[Scope]
    robot_id: str | None = None  # a robot token's robot
    robot_ids: frozenset[str] | None = None  # a key limited to these robots
    fleet_tag: str | None = None  # a key limited to robots with this tag

    @property
    def limited(self) -> bool:
        return self.robot_ids is not None or self.fleet_tag is not None

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise Forbidden(
                f"this credential lacks the {scope.value!r} scope", headers={"WWW-Authenticate": _insufficient(scope)}
            )

    def require_whole_fleet(self, what: str) -> None:
        """Forbidden for a key limited to part of the fleet: ``what`` is about all of it."""
        if self.limited:
            raise Forbidden(f"{what} covers the whole fleet; this key is limited to part of it")

    def sees(self, robot_id: str, tags: Collection[str]) -> bool:
        """Whether a key limited to some robots covers this one (an unlimited key covers all)."""
        if self.robot_ids is not None and robot_id not in self.robot_ids:
            return False
        return self.fleet_tag is None or self.fleet_tag in tags


# With authentication off (FLEET_AUTH=off, for trusted networks and the seed's clients): everything is allowed.
ANONYMOUS = Principal(credential_id=0, name="anonymous (authentication off)", scopes=KEY_SCOPES)


def _insufficient(scope: Scope) -> str:
    return f'Bearer realm="fleet", error="insufficient_scope", scope="{scope.value}"'
