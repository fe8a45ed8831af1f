"""Delivery of payloads to the API: bounded retries with capped exponential backoff and jitter, and counters."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

import httpx

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 503})  # honoured with Retry-After; any other 5xx is retried too


@dataclass
class Stats:
    """Counts of readings (not requests), except ``retried`` which counts re-sent requests."""

    generated: int = 0
    sent: int = 0  # first attempts only
    acknowledged: int = 0
    duplicates: int = 0
    retried: int = 0
    rejected: int = 0
    dropped: int = 0
    unacknowledged: int = 0  # still failing when the run's deadline came: not stored as far as we know
    lost: int | None = None  # filled by verification: acknowledged but not found in the API


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.1
    cap_s: float = 5.0

    def delay_s(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Full jitter over a capped exponential, never shorter than the server's Retry-After."""
        jittered = rng.uniform(0, min(self.cap_s, self.base_s * 2**attempt))
        return max(jittered, retry_after_s or 0.0)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds; the HTTP-date form is not sent by this API and is ignored."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


@dataclass
class Outcome:
    status: int | None  # None: no HTTP answer (timeout or connection error) on the last attempt
    accepted: int = 0
    duplicates: int = 0
    attempts: int = 0

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Deliverer:
    """POSTs one payload until it is acknowledged, rejected, or ``deadline`` (loop time) passes."""

    client: httpx.AsyncClient
    stats: Stats
    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    path: str = "/telemetry/"

    async def deliver(
        self, body: bytes, readings: int, deadline: float | None = None, token: str | None = None
    ) -> Outcome:
        loop = asyncio.get_running_loop()
        outcome = Outcome(status=None)
        while True:
            outcome.attempts += 1
            if outcome.attempts == 1:
                self.stats.sent += readings
            else:
                self.stats.retried += 1
            retry_after = None
            try:
                headers = {"content-type": "application/json"}
                if token is not None:  # the robot's own token, in place of the client's default credential
                    headers["authorization"] = f"Bearer {token}"
                response = await self.client.post(self.path, content=body, headers=headers)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                outcome.status = None
                log.debug("attempt %d: %r", outcome.attempts, exc)
            else:
                outcome.status = response.status_code
                if response.is_success:
                    result = response.json()
                    outcome.accepted, outcome.duplicates = result["accepted"], result["duplicates"]
                    self.stats.acknowledged += readings
                    self.stats.duplicates += outcome.duplicates
                    return outcome
                if response.status_code < 500 and response.status_code not in RETRYABLE_STATUS:
                    # The request itself is wrong: re-sending it can only fail again.
                    self.stats.rejected += readings
                    log.warning("rejected (%d): %s", response.status_code, response.text[:500])
                    return outcome
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            delay = self.backoff.delay_s(outcome.attempts - 1, retry_after, self.rng)
            if deadline is not None and loop.time() + delay > deadline:
                self.stats.unacknowledged += readings
                return outcome
            await asyncio.sleep(delay)
