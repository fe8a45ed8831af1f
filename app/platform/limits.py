"""Per-credential limits that keep one client from using up what others need: request rates and concurrent work.

Both are per process: with several workers, a client gets each worker's allowance (documented in docs/security.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from app.model.errors import RateLimited

MAX_TRACKED_CLIENTS = 100_000  # past this many buckets, the idle ones are forgotten


class RateLimiter:
    """A token bucket per client: ``rate_per_s`` sustained, ``burst`` at once; past it, 429 with Retry-After."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # client -> (tokens, at)

    def take(self, client: Hashable, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            retry_after_s = math.ceil((1.0 - tokens) / self._rate)
            raise RateLimited(f"more than {self._rate:g} requests per second", retry_after_s=retry_after_s)
        if len(self._buckets) >= MAX_TRACKED_CLIENTS and client not in self._buckets:
            self._forget_full(now)
        self._buckets[client] = (tokens - 1.0, now)

    def allows(self, client: Hashable, now: float | None = None) -> bool:
        """Whether ``take`` would succeed now, without taking."""
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.get(client, (self._burst, now))
        return tokens + (now - at) * self._rate >= 1.0

    def _forget_full(self, now: float) -> None:
        """Buckets that have refilled carry no information: drop them."""
        self._buckets = {
            client: (tokens, at)
            for client, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self._rate < self._burst
        }


class ConcurrencyLimiter:
    """At most ``per_client`` operations in flight per client and ``total`` in all; past either, 429 at once.

    ``fair``: the last free slot goes only to a client that holds none, so two clients cannot take every slot
    between them and shut a third out (the heavy reads: 4 slots, 2 per credential).
    """

    def __init__(self, per_client: int, total: int, what: str, retry_after_s: int = 1, *, fair: bool = False) -> None:
        self._per_client = per_client
        self._total = total
        self._what = what
        self._retry_after_s = retry_after_s
        self._fair = fair
        self._in_flight: dict[Hashable, int] = {}
        self._count = 0

    @property
    def in_flight(self) -> int:
        return self._count

    @contextmanager
    def hold(self, client: Hashable) -> Iterator[None]:
        self.acquire(client)
        try:
            yield
        finally:
            self.release(client)

    def acquire(self, client: Hashable) -> None:
        mine = self._in_flight.get(client, 0)
        if mine >= self._per_client:
            raise RateLimited(
                f"at most {self._per_client} {self._what} at once per credential", retry_after_s=self._retry_after_s
            )
        if self._count >= self._total:
            raise RateLimited(f"at most {self._total} {self._what} at once in all", retry_after_s=self._retry_after_s)
        if self._fair and mine and self._count + 1 >= self._total:
            raise RateLimited(
                f"the last free slot for {self._what} is kept for a credential that holds none",
                retry_after_s=self._retry_after_s,
            )
        self._in_flight[client] = mine + 1
        self._count += 1

    def release(self, client: Hashable) -> None:
        mine = self._in_flight[client] - 1
        if mine:
            self._in_flight[client] = mine
        else:
            del self._in_flight[client]
        self._count -= 1
