"""The apps the api tier shares: one per distinct settings for the whole session, settled and told of the emptied
database between tests, instead of 300 ms of app, pools and jobs built for each test."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType

import msgspec
import pytest

from app.platform.settings import Settings
from tests.support.servers import Served, serve_app_in_process


class SharedApps:
    def __init__(self) -> None:
        self._stack = AsyncExitStack()
        self._served: dict[bytes, Served] = {}

    async def __aenter__(self) -> SharedApps:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def get(self, settings: Settings) -> Served:
        """The app serving ``settings``, started on first use."""
        key = msgspec.json.encode(settings)
        if key not in self._served:
            self._served[key] = await self._stack.enter_async_context(serve_app_in_process(settings))
        return self._served[key]

    async def settle(self) -> None:
        """Before the database is emptied: what each app holds for later is written now, not into the next test."""
        for served in self._served.values():
            await served.services.latest.sync()

    def forget_database(self) -> None:
        """After: each app forgets what it knew of robots and credentials, as after a restore. Ids are not
        restarted (tests/support/database.py), so what is kept by id (limits, positions) is never mistaken."""
        for served in self._served.values():
            served.services.ingestor.forget_robots()
            served.services.authenticator.forget()


SHARED_APPS = pytest.StashKey[SharedApps]()
