"""The per-process resources: opened in dependency order when the app starts, closed in reverse when it stops."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial

import msgspec

from app.alerts.engine import AlertEngine
from app.alerts.notices import relay_alert_notice
from app.alerts.webhooks import WebhookSender
from app.auth.authenticator import Authenticator
from app.model.payloads import Storage
from app.model.principal import Principal
from app.mqtt.accounts import BrokerAccounts
from app.mqtt.subscriber import MqttSubscriber
from app.platform import metrics
from app.platform.limits import ConcurrencyLimiter, RateLimiter
from app.platform.migrations import apply_migrations
from app.platform.notices import CommitNotices
from app.platform.pool import Pool, create_pool
from app.platform.settings import LimitSettings, Settings
from app.rollups import retention
from app.rollups.jobs import Rollups
from app.telemetry.buffer import Ingestor
from app.telemetry.fanout import Broadcaster
from app.telemetry.latest import LatestState
from app.telemetry.relay import CommitRelay
from app.web.admission import InFlight
from app.web.sampling import Sampler

log = logging.getLogger(__name__)

SERVICES_KEY = "services"  # where the app's lifespan puts the Services, in app.state
CONTROL_POOL_SIZE = 2  # credential look-ups, the revocation poll and health
INGEST_REQUESTS_TOTAL = 1_000_000  # no cap in all: the queue bound sheds load; the per-credential cap is the point


@dataclass(frozen=True, slots=True)
class Limits:
    robot_rate: RateLimiter
    key_rate: RateLimiter
    heavy_reads: ConcurrencyLimiter
    exports: ConcurrencyLimiter
    subscribers: ConcurrencyLimiter
    ingest_requests: ConcurrencyLimiter  # robot tokens
    key_ingest_requests: ConcurrencyLimiter  # ingest keys (gateways)

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> Limits:
        return cls(
            robot_rate=RateLimiter(settings.robot_requests_per_s, settings.robot_burst),
            key_rate=RateLimiter(settings.key_requests_per_s, settings.key_burst),
            heavy_reads=ConcurrencyLimiter(
                settings.heavy_reads_per_credential,
                settings.heavy_reads_total,
                "exports or fleet-wide questions",
                fair=True,
            ),
            exports=ConcurrencyLimiter(
                settings.exports_per_credential, settings.exports_total, "CSV exports", fair=True
            ),
            subscribers=ConcurrencyLimiter(
                settings.subscribers_per_credential, settings.max_subscribers, "live-stream subscriptions"
            ),
            ingest_requests=ConcurrencyLimiter(
                settings.ingest_requests_per_credential, INGEST_REQUESTS_TOTAL, "ingest requests"
            ),
            key_ingest_requests=ConcurrencyLimiter(
                settings.ingest_requests_per_key, INGEST_REQUESTS_TOTAL, "ingest requests"
            ),
        )

    def ingest_limiter_for(self, writer: Principal) -> ConcurrencyLimiter:
        """A robot's token or a gateway's key: each has its own allowance of ingest requests in flight."""
        return self.ingest_requests if writer.robot_id is not None else self.key_ingest_requests


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    pool: Pool  # reads
    control_pool: Pool  # credentials and health
    limits: Limits
    latest: LatestState
    ingestor: Ingestor
    broadcaster: Broadcaster
    authenticator: Authenticator
    storage: Storage
    alerts: AlertEngine
    in_flight: InFlight


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    async with AsyncExitStack() as stack:
        if settings.database.migrate_on_start:
            await apply_migrations(settings.database.database_url)
        pool = await create_pool(settings.database)
        stack.push_async_callback(pool.close)
        ingest_pool = await create_pool(settings.database, settings.ingest.flush_concurrency + 1, keep_sessions=True)
        stack.push_async_callback(ingest_pool.close)
        control_pool = await create_pool(settings.database, CONTROL_POOL_SIZE)
        stack.push_async_callback(control_pool.close)
        latest = LatestState(ingest_pool, pool, settings.ingest.latest_interval_ms)
        latest.start()
        stack.push_async_callback(latest.close)  # writes the latest state the final flushes moved
        authenticator = Authenticator(control_pool, settings.auth)
        await authenticator.start()
        stack.push_async_callback(authenticator.close)
        ingestor = Ingestor(ingest_pool, settings.ingest, latest)
        authenticator.on_change(ingestor.forget_provisioning)
        limit_settings = settings.limits
        in_flight = InFlight(limit_settings.requests_per_robot, limit_settings.requests_per_key)
        authenticator.on_change(partial(in_flight.end_revoked, authenticator))
        broadcaster = Broadcaster(settings.stream.stream_queue_size)
        ingestor.add_listener(broadcaster.publish)
        # Commits of the other processes reach this one's subscribers through PostgreSQL's LISTEN/NOTIFY.
        relay = CommitRelay(ingestor.instance, pool, broadcaster)
        ingestor.add_claims(relay)
        relay.start()
        stack.push_async_callback(relay.close)
        # Alert transitions of every process reach this one's subscribers the same way, at their COMMIT.
        notices = CommitNotices(
            settings.database.database_url,
            relay.on_notice,
            partial(relay_alert_notice, broadcaster),
            on_listening=relay.on_listening,
        )
        notices.start()
        stack.push_async_callback(notices.close)
        # The alert rounds also write the latest state that a process left unwritten (a crash, a failed write).
        engine = AlertEngine(pool, settings.alerts, settings.query.stale_after_s)
        engine.start()
        stack.push_async_callback(engine.close)
        sender = WebhookSender(pool, settings.alerts)
        sender.start()
        stack.push_async_callback(sender.close)
        ingestor.start()
        stack.push_async_callback(ingestor.close)  # flushes (and acknowledges) every queued reading
        stack.callback(broadcaster.close)  # live streams end first
        limits = Limits.from_settings(settings.limits)
        if settings.mqtt.mqtt_accounts_dir:
            accounts = BrokerAccounts(control_pool, settings.mqtt)
            await accounts.start()
            stack.push_async_callback(accounts.close)
        if settings.mqtt.enabled:
            subscriber = MqttSubscriber(
                settings.mqtt, ingestor, limits.robot_rate, settings.ingest.max_body_bytes, f"fleet-{ingestor.instance}"
            )
            subscriber.start()
            stack.push_async_callback(subscriber.close)  # before the ingestor's: it answers what it took
        pools = {"read": pool, "ingest": ingest_pool, "control": control_pool}
        period = settings.database.retention_period  # None: FLEET_RETENTION=off, and no database jobs either
        if await retention.set_retention_policies(pool, period):
            log.info("retention: the database's jobs drop chunks older than %s", period or "never")
        database = settings.database
        if database.rollups:
            rollup = Rollups(pool, database.rollup_interval_ms / 1000, settings.query.max_status_gap_s)
            rollup.start()
            stack.push_async_callback(rollup.close)
        storage = await describe_storage(pool, settings)
        log.info(
            "storage: TimescaleDB %s edition; retention %s; compression %s",
            storage.timescaledb_license,
            storage.retention,
            storage.compression,
            extra=msgspec.structs.asdict(storage),
        )
        sampler = Sampler(pools, control_pool, broadcaster, storage)
        sampler.start()
        stack.push_async_callback(sampler.close)
        stack.callback(metrics.forget_process, os.getpid())
        yield Services(
            settings=settings,
            pool=pool,
            control_pool=control_pool,
            limits=limits,
            latest=latest,
            ingestor=ingestor,
            broadcaster=broadcaster,
            authenticator=authenticator,
            storage=storage,
            alerts=engine,
            in_flight=in_flight,
        )


async def describe_storage(pool: Pool, settings: Settings) -> Storage:
    """What the database offers and what is enabled, for the start-up log and ``GET /``."""
    license_name = await retention.fetch_timescaledb_license(pool)
    if (policy := await retention.fetch_columnstore_policy(pool)) is not None:
        after, scheduled = policy
        compression = f"columnstore, chunks converted after {after}" + ("" if scheduled else " (policy paused)")
    else:
        compression = "off"
    return Storage(license_name, settings.database.retention, compression)
