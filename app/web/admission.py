"""Requests in flight, per credential: a cap on how many one credential may hold at once, and the means to end
them all (streams and unfinished bodies included) when the credential is revoked.

The server (app.cli.serve_limits) gives each request's task a way to close its connection: ending a request
closes its connection, as a proxy would, so a handler waiting for a body or a stream waiting for readings sees a
disconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from contextvars import ContextVar
from typing import Any

from app.auth.authenticator import Authenticator
from app.model.errors import RateLimited
from app.model.principal import Principal

log = logging.getLogger(__name__)

# The server (app.cli.serve_limits) sets this, in each request's task, to what closes the request's connection.
CONNECTION_CLOSER: ContextVar[Callable[[], None] | None] = ContextVar("fleet_connection_closer", default=None)
_HOLDER_KEY = "fleet.credential_id"  # in the ASGI scope: the credential this request was counted against
# Past the cap the connection is closed after the 429, so an unread body cannot keep holding it.
_CLOSE = {"connection": "close"}


class InFlight:
    """Requests being served per credential (counted from admission to the last byte of the answer)."""

    def __init__(self, per_robot: int, per_key: int) -> None:
        self._per_robot = per_robot
        self._per_key = per_key
        self._requests: dict[int, dict[int, Callable[[], None] | None]] = {}  # credential -> id(scope) -> close
        self._tasks: set[asyncio.Task[None]] = set()

    def enter(self, scope: dict[str, Any], principal: Principal) -> None:
        """Count this request against ``principal``; 429 (and the connection closed) past its cap."""
        if _HOLDER_KEY in scope:  # admitted already (the guard runs once per route, but be safe)
            return
        credential_id = principal.credential_id
        held = self._requests.get(credential_id)
        if held is None:
            held = self._requests[credential_id] = {}
        cap = self._per_robot if principal.robot_id is not None else self._per_key
        if len(held) >= cap:
            raise RateLimited(f"at most {cap} requests at once per credential", retry_after_s=1, headers=_CLOSE)
        held[id(scope)] = CONNECTION_CLOSER.get()
        scope[_HOLDER_KEY] = credential_id

    def leave(self, scope: dict[str, Any]) -> None:
        credential_id = scope.pop(_HOLDER_KEY, None)
        if credential_id is None:
            return
        held = self._requests.get(credential_id)
        if held is not None:
            held.pop(id(scope), None)
            if not held:
                del self._requests[credential_id]

    def holders(self) -> list[int]:
        """Credentials with a request in flight."""
        return list(self._requests)

    def end_revoked(self, authenticator: Authenticator) -> None:
        """Credentials changed somewhere: end the requests of those that no longer work (a task of its own)."""
        holders = self.holders()
        if not holders:
            return
        task = asyncio.create_task(self._end_revoked(authenticator, holders), name="end-revoked-requests")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _end_revoked(self, authenticator: Authenticator, holders: list[int]) -> None:
        try:
            self.end(await authenticator.fetch_ended(holders))
        except Exception as exc:  # the database is away: the next change, or the body deadline, ends them
            log.warning("could not check revoked credentials: %r", exc)

    def end(self, credential_ids: Collection[int]) -> int:
        """Close the connection of every request in flight for these credentials; how many were closed."""
        closed = 0
        for credential_id in credential_ids:
            for close in list(self._requests.get(credential_id, {}).values()):
                if close is not None:
                    close()
                    closed += 1
        if closed:
            log.warning("revoked credentials %s: closed %d connections", sorted(credential_ids), closed)
        return closed
