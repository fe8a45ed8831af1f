"""Bearer tokens to principals: hash, find in the cache, and load the cache anew whenever credentials change.

Each process loads every live credential (the ``token_cache_size`` newest) at start, so a fleet's first requests
cost no database look-up: 1,000 robots' first POSTs cost 1,000 look-ups in each process before. A token that is
not loaded (issued since by another process) is looked up once, then cached. A revocation or rotation bumps the
database's credential epoch; each process polls it every ``auth_poll_ms`` and loads the cache anew when it moves,
so a revoked token stops working everywhere within that interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime

from app.auth import store as credentials
from app.auth.tokens import bearer_token, hash_token
from app.model.errors import RateLimited, Unauthenticated
from app.model.principal import ANONYMOUS, Principal, Scope
from app.platform import metrics
from app.platform.limits import RateLimiter
from app.platform.periodic import Periodic
from app.platform.pool import Pool
from app.platform.settings import AuthSettings

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="fleet"'}
log = logging.getLogger(__name__)


class Authenticator:
    def __init__(self, pool: Pool, settings: AuthSettings) -> None:
        self._pool = pool
        self._settings = settings
        # Unknown tokens per client address: each costs a database look-up, so past this budget a client's
        # uncached tokens get 429 without one (a flood of random tokens cannot load the credential pool).
        self._failures = RateLimiter(settings.failed_auth_per_s, settings.failed_auth_burst)
        self.enabled = settings.enabled
        self._cache: dict[bytes, tuple[Principal, datetime | None]] = {}
        self._epoch: int | None = None
        self._poller = Periodic("credential-epoch-poller", settings.auth_poll_ms / 1000, self._follow_epoch)
        self._on_change: list[Callable[[], None]] = []
        # Moved by every forget(): a load that began before it (its snapshot may hold a token revoked since) is
        # not kept.
        self._forgotten = 0

    async def start(self) -> None:
        if not self.enabled:
            log.warning(
                "AUTHENTICATION IS OFF (FLEET_AUTH=off): any client can write and read everything. "
                "Use this only on a trusted network."
            )
            return
        self._epoch = await credentials.fetch_epoch(self._pool)
        await self._load()
        self._poller.start()

    async def close(self) -> None:
        await self._poller.close()

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever credentials (or robots' provisioning) may have changed."""
        self._on_change.append(callback)

    async def authenticate(self, authorization: str | None, peer: str = "") -> Principal:
        """The principal an ``Authorization`` header value speaks for; Unauthenticated if none; RateLimited if
        ``peer`` (the client's address) sent too many unknown tokens lately and this one is not cached."""
        if not self.enabled:
            return ANONYMOUS
        token = bearer_token(authorization)
        if token is None:
            raise Unauthenticated("send a credential as 'Authorization: Bearer <token>'", headers=CHALLENGE)
        digest = hash_token(token)
        cached = self._cache.get(digest)
        if cached is None:
            if not self._failures.allows(peer):
                rate = self._settings.failed_auth_per_s
                raise RateLimited(f"more than {rate} unknown tokens per second from this address", retry_after_s=1)
            metrics.CREDENTIAL_LOOKUPS.inc()
            stored = await credentials.fetch_live_credential(self._pool, digest)
            if stored is None:
                self._failures.take(peer)
                raise Unauthenticated("the token is unknown, revoked or expired", headers=CHALLENGE)
            if len(self._cache) >= self._settings.token_cache_size:
                self._cache.clear()
            cached = self._cache[digest] = _cached(stored)
        principal, expires_at = cached
        if expires_at is not None and expires_at <= datetime.now(UTC):
            self._cache.pop(digest, None)
            raise Unauthenticated("the token is unknown, revoked or expired", headers=CHALLENGE)
        return principal

    async def fetch_ended(self, credential_ids: Collection[int]) -> set[int]:
        """Those of ``credential_ids`` that no longer work (revoked or expired)."""
        if not credential_ids:
            return set()
        return set(credential_ids) - await credentials.fetch_live_ids(self._pool, list(credential_ids))

    def forget(self) -> None:
        """Drop every cached answer (this process revoked or rotated a credential itself); the poll loads them
        anew when it sees the epoch the change moved."""
        self._forgotten += 1
        self._cache.clear()
        self._notify_change()

    def provisioned(self) -> None:
        """This process added or re-tagged a robot: tell the listeners. Every cached token is still right (a new
        one is looked up on its first use), so the fleet's tokens stay loaded."""
        self._notify_change()

    def _notify_change(self) -> None:
        for callback in self._on_change:
            callback()

    async def _follow_epoch(self) -> None:
        # A database away raises here: the cached tokens are kept, and Periodic says so once.
        epoch = await credentials.fetch_epoch(self._pool)
        if epoch != self._epoch:
            self._epoch = epoch  # read before the load: a change after it moves the epoch again
            try:
                await self._load()  # the old cache answers meanwhile: a fleet never finds it empty
            except Exception as exc:  # tokens are looked up one by one until the next change
                log.warning("credentials not loaded, looking tokens up one by one: %r", exc)
                self._cache.clear()
            self._notify_change()

    async def _load(self) -> None:
        """Replace the cache with every live credential (the newest ``token_cache_size``), in one query."""
        forgotten = self._forgotten
        loaded = await credentials.fetch_live_credentials(self._pool, self._settings.token_cache_size)
        if forgotten == self._forgotten:  # else a revocation here came after the query's snapshot: the next poll
            self._cache = {digest: _cached(stored) for digest, stored in loaded}


def _cached(stored: credentials.StoredCredential) -> tuple[Principal, datetime | None]:
    """What the cache keeps of a live credential: its principal and when it expires."""
    scopes = frozenset({Scope.WRITE_OWN} if stored.kind == "robot" else (Scope(s) for s in stored.scopes))
    principal = Principal(
        credential_id=stored.credential_id,
        name=stored.name,
        scopes=scopes,
        robot_id=stored.robot_id,
        robot_ids=None if stored.robot_ids is None else frozenset(stored.robot_ids),
        fleet_tag=stored.fleet_tag,
    )
    return principal, stored.expires_at
