"""Notices between API processes (commits, alert transitions): a LISTEN connection of its own, kept open
(reopened if it drops)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

RECONNECT_S = 1.0

# Every reading's stored_xid is the id of the transaction that stored it (migrations/012). Below the xmin of the
# current snapshot every transaction has ended: "stored_xid < COMMITTED_BELOW" is a set of readings that no commit
# can join any more, which is what lets the rollups, the latest state and the alert rounds follow the readings
# exactly once each, from the database alone, whatever process stored them and whether or not it survived.
COMMITTED_BELOW = "txid_snapshot_xmin(txid_current_snapshot())"
# Every flush announces its commit on this channel; every alert transition on the other (app.telemetry.relay,
# app.alerts.notices).
COMMIT_CHANNEL = "fleet_commits"
ALERT_CHANNEL = "fleet_alerts"

log = logging.getLogger(__name__)


class CommitNotices:
    """Calls ``on_commit(payload)`` for every commit notice and ``on_alert(payload)`` for every alert transition
    any API process announces (this one's included)."""

    def __init__(
        self,
        database_url: str,
        on_commit: Callable[[str], None],
        on_alert: Callable[[str], None],
        *,
        on_listening: Callable[[], None] | None = None,
    ) -> None:
        self._database_url = database_url
        self._on_listening = on_listening  # called each time a LISTEN is in place, the first and after a loss
        self._handlers = {COMMIT_CHANNEL: on_commit, ALERT_CHANNEL: on_alert}
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while a LISTEN is in place (tests wait on it)

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="commit-notices")

    async def close(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    def _deliver(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        try:
            self._handlers[channel](str(payload))
        except Exception:
            log.exception("a notice on %s could not be handled", channel)

    async def _listen_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._listen_once()
            except Exception as exc:
                # A connection lost while its LISTENs are set up raises asyncpg's InterfaceError (no PostgresError);
                # letting it end this task left the process deaf for good (seen under load in test_instances).
                log.warning("commit notices: cannot listen (%r); retrying", exc)
            if not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECONNECT_S):
                        await self._stopping.wait()

    async def _listen_once(self) -> None:
        """Listen on one connection until the process stops or the connection drops."""
        conn = await asyncpg.connect(self._database_url)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            for channel in self._handlers:
                await conn.add_listener(channel, self._deliver)
            if self._on_listening is not None:
                self._on_listening()
            self.listening.set()
            waits = {asyncio.create_task(self._stopping.wait()), asyncio.create_task(lost.wait())}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
        finally:
            self.listening.clear()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await conn.close()
