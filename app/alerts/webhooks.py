"""Webhook delivery from the database outbox: signed as the Standard Webhooks spec says, at least once, retried
with exponential backoff, from any API process (a delivery is leased while it is attempted).

Signature: ``webhook-signature: v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>``, where
the key is the base64 after ``whsec_`` in the webhook's secret. A receiver recomputes it over the raw body, compares
in constant time, and refuses timestamps far from its clock (replays). ``webhook-id`` is the same on every attempt
of one delivery: a receiver deduplicates by it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Mapping

import httpx

from app import __version__
from app.alerts import store as alerts
from app.alerts.targets import TargetRefused, resolve_target
from app.model.errors import BadParameter
from app.platform import metrics
from app.platform.periodic import Periodic
from app.platform.pool import Pool
from app.platform.settings import AlertSettings

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
TIMESTAMP_TOLERANCE_S = 300  # what verify_signature accepts between the sender's clock and the receiver's


async def check_webhook_url(url: str, allow_private: bool) -> None:
    """A URL the sender may post to, checked when it is registered (BadParameter): its form, and where its host
    resolves now. Each delivery checks again (app.alerts.targets), since DNS answers change."""
    try:
        await resolve_target(url, allow_private)
    except TargetRefused as exc:
        raise BadParameter(str(exc)) from None


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_signature(secret: str, headers: Mapping[str, str], body: str, now_s: float | None = None) -> bool:
    """What a receiver does (the demo receiver and the tests use it): any listed v1 signature may match."""
    try:
        message_id, timestamp = headers["webhook-id"], int(headers["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now_s is None else now_s) - timestamp) > TIMESTAMP_TOLERANCE_S:
        return False
    expected = sign(secret, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, given) for given in headers.get("webhook-signature", "").split())


def retry_delay_s(attempts: int, settings: AlertSettings) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: base, doubling, capped."""
    return float(min(settings.webhook_retry_max_s, settings.webhook_retry_base_s * 2 ** min(attempts - 1, 30)))


class WebhookSender(Periodic):
    """Attempts every due delivery each ``webhook_poll_ms``. Uses the read pool, never ingest's: a receiver that
    is down costs retries, not ingest capacity."""

    def __init__(self, pool: Pool, settings: AlertSettings) -> None:
        super().__init__("webhook-sender", settings.webhook_poll_ms / 1000)
        self._pool = pool
        self._settings = settings
        # Redirects are not followed: a delivery goes to the registered URL or fails.
        self._client = httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False)
        # An attempt's lease: longer than any attempt can take, so no two processes attempt one delivery at once.
        self._lease_s = settings.webhook_timeout_s * 2 + 5
        self._batch = max(1, settings.webhook_attempts_per_s * settings.webhook_poll_ms // 1000)

    async def close(self) -> None:
        await super().close()
        await self._client.aclose()

    async def tick(self) -> None:
        # One batch per tick: at most webhook_attempts_per_s attempts a second in this process, so a storm of
        # transitions towards a receiver that is down costs ingest (on the same event loop) a bounded share.
        claimed = await alerts.claim_deliveries(self._pool, self._batch, self._lease_s)
        await asyncio.gather(*(self._attempt(delivery) for delivery in claimed))  # each attempt catches its own

    async def _attempt(self, delivery: alerts.ClaimedDelivery) -> None:
        delivery_id, body, attempts = delivery.delivery_id, delivery.body, delivery.attempts
        message_id, timestamp = f"msg_{delivery_id}", int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": f"fleet-telemetry/{__version__}",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(delivery.secret, message_id, timestamp, body),
        }
        status: int | None = None
        # The delivery log says what happened in words that name no address, port or network error: it is shown
        # to operators, and must not make the sender a port scanner.
        try:
            target = await resolve_target(delivery.url, self._settings.webhook_allow_private)
            response = await self._client.post(
                target.url,
                content=body.encode(),
                headers={**headers, "host": target.host_header},
                extensions={"sni_hostname": target.sni_hostname} if target.sni_hostname else None,
            )
            status = response.status_code
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except TargetRefused as exc:
            error = str(exc)
        except httpx.TimeoutException:
            error = "no answer within FLEET_WEBHOOK_TIMEOUT_S"
        except (httpx.HTTPError, httpx.InvalidURL):  # InvalidURL is no HTTPError; unfixed, it failed each tick
            error = "the receiver could not be reached"
        if error is None and status is not None:
            metrics.WEBHOOK_ATTEMPTS.labels("delivered").inc()
            await alerts.mark_delivered(self._pool, delivery_id, status)
            return
        metrics.WEBHOOK_ATTEMPTS.labels("failed").inc()
        retry_in_s = retry_delay_s(attempts, self._settings)
        await alerts.mark_attempt_failed(
            self._pool, delivery_id, status, error or "", retry_in_s, self._settings.webhook_max_attempts
        )
        if attempts >= self._settings.webhook_max_attempts:
            log.warning("webhook delivery %s given up after %s attempts: %s", delivery_id, attempts, error)
