"""Service settings: one frozen struct of groups, read from ``FLEET_*`` environment variables.

Each field's variable is ``FLEET_`` + its name in upper case, so field names are unique across groups.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

import msgspec

from app.platform.timeranges import duration_seconds

ENV_PREFIX = "FLEET_"
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
# Read by the shell scripts and the test suite, never by the service: allowed, not parsed.
SCRIPT_ONLY_VARIABLES = frozenset(
    {
        "FLEET_DB_PORT",
        "FLEET_PGDATA",
        "FLEET_PG_MAJOR",
        "FLEET_TIMESCALEDB_SOURCE",
        "FLEET_TIMESCALEDB_SHA256",
        "FLEET_TEST_SERVER_URL",
        "FLEET_ADMIN_KEY",
        "FLEET_API_URL",
        "FLEET_MQTT_PORT",
        "FLEET_MQTT_BIND",
        "FLEET_MQTT_DIR",
    }
)

Positive = Annotated[int, msgspec.Meta(gt=0)]


class _Group(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ServerSettings(_Group, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    # Processes serving requests; "auto": one per core, less the database's share when it is on this machine
    # (Settings.worker_count, and benchmarks/NOTES.md for the measurements behind it).
    workers: Positive | Literal["auto"] = "auto"
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    # One JSON object per line for machines, or "text" for a developer's terminal; one access line per request.
    log_format: Literal["json", "text"] = "json"
    access_log: bool = True
    # Comma-separated origins a browser console may call the API from; empty: CORS off.
    cors_origins: str = ""
    # Enforced by the server (app/cli/serve_limits.py): a request's head must arrive within header_read_timeout_s
    # and fit in max_header_bytes; an idle kept-alive connection is closed after idle_timeout_s; past
    # max_connections per process, new requests get 503.
    max_header_bytes: Positive = 16 * 1024
    header_read_timeout_s: Positive = 10
    idle_timeout_s: Positive = 5
    max_connections: Positive = 2000
    # A request's body must arrive in full within this long of its head, or the connection is closed (408 if
    # nothing was answered yet): an unfinished body cannot hold a connection, whoever sends it. 8 MiB (the
    # largest body) in 30 s needs 280 kB/s.
    body_read_timeout_s: Positive = 30


class DatabaseSettings(_Group, frozen=True, kw_only=True, forbid_unknown_fields=True):
    database_url: str = "postgresql://postgres@127.0.0.1:55432/fleet"
    pool_min_size: Annotated[int, msgspec.Meta(ge=0)] = 1
    # The read pool. Ingest has its own (flush_concurrency + 1 connections) and so do credential checks and
    # health (2), so that no amount of reading can make ingest or health wait for a connection.
    pool_max_size: Positive = 8
    migrate_on_start: bool = True
    # Longest a single statement may run; the fleet-wide analytic queries are the ones that get near it.
    query_timeout_ms: Positive = 30_000
    health_timeout_ms: Positive = 2000
    # Readings older than this are dropped, a whole day-chunk at a time (TimescaleDB's drop_chunks), checked at
    # start-up and hourly: "off", or a duration such as 90d. It must be longer than max_past_s, or readings the
    # API still accepts would be dropped as they arrive.
    retention: str = "off"
    # The rollups behind buckets of an hour or wider, daily activity and distances: a pass this often, over the
    # readings whose transactions have ended (by commit position, app.platform.sql.COMMITTED_BELOW). Readings stored
    # since are read from the table itself, so answers never lag. Off: no passes (a pass costs PostgreSQL about as
    # much per reading as storing it, which only a fleet ingesting near the machine's limit notices); answers stay
    # right, read more and more from the readings as the watermark falls behind.
    rollups: bool = True
    rollup_interval_ms: Positive = 10_000

    @property
    def retention_period(self) -> timedelta | None:
        if self.retention == "off":
            return None
        seconds = duration_seconds(self.retention)
        return None if seconds is None else timedelta(seconds=seconds)

    @property
    def is_local(self) -> bool:
        """Whether the database is on this machine: a loopback host or a Unix socket (a path), named in the URL's
        host or in its ``host`` parameter, or none named (libpq's default is the local socket)."""
        url = urlsplit(self.database_url)
        hosts = [url.hostname or "", *parse_qs(url.query).get("host", [])]
        named = [host for host in hosts if host]
        return all(host in _LOOPBACK or host.startswith("/") for host in named)


class IngestSettings(_Group, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Group commit: a flush starts when this many rows wait, or when the oldest waiting row is this old.
    flush_max_rows: Positive = 5000
    # 3 ms, not 5: single-reading POSTs ran 20 % faster with the same PostgreSQL CPU, batches level (NOTES.md).
    flush_interval_ms: Positive = 3
    # Flushes in flight at once per process; each holds one connection.
    flush_concurrency: Positive = 2
    # A flush that has not committed by then fails its requests with 503 instead of hanging them.
    flush_timeout_ms: Positive = 10_000
    retry_after_s: Positive = 1
    max_readings_per_request: Positive = 10_000
    # Readings waiting for a flush, per process; past it a request gets 503 at once (memory stays bounded).
    max_queued_rows: Positive = 100_000
    # ...of which one credential may hold this many (with authentication on).
    max_queued_rows_per_credential: Positive = 25_000
    max_body_bytes: Positive = 8 * 1024 * 1024
    # Accepted timestamp window relative to the server clock. A minute ahead: an NTP- or GPS-disciplined clock is
    # within milliseconds, and a free-running RTC drifts seconds a day, so a minute admits any clock that is kept
    # at all while refusing one that is broken. (Latest state ranks a reading by when it arrived, so even within
    # the window a fast clock cannot freeze it.)
    max_future_s: Positive = 60
    max_past_s: Positive = 30 * 86_400
    # Each robot's latest state is written at most this often (and before every read of it in this process).
    latest_interval_ms: Positive = 200


class QuerySettings(_Group, frozen=True, kw_only=True, forbid_unknown_fields=True):
    history_default_limit: Positive = 100
    history_max_limit: Positive = 1000
    # Lists of robots (GET /robots, /fleet/*): one page holds a site's whole fleet by default.
    list_default_limit: Positive = 1000
    list_max_limit: Positive = 10_000
    # A robot with no reading for this long counts as offline (GET /robots and the fleet questions).
    stale_after_s: Positive = 300
    max_buckets: Positive = 10_000
    # Daily activity: a reading's status lasts until the robot's next reading, but at most this long: the time of a
    # longer silence past it counts as no status.
    max_status_gap_s: Positive = 300


class AuthSettings(_Group, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # "off" trusts every client, as the seed's original API did: for trusted networks only, logged loudly at
    # start-up and shown on GET /.
    auth: Literal["on", "off"] = "on"
    # Verified tokens kept in each process; a revocation or rotation empties it within auth_poll_ms.
    token_cache_size: Positive = 10_000
    auth_poll_ms: Positive = 500
    # After a robot's token is rotated, the old one keeps working this long, so the robot can switch over.
    rotation_grace_s: Positive = 86_400
    # Unknown tokens per client address and process (a token bucket): past it, 429 without a database look-up
    # until the budget refills. Tokens already verified are never limited by it.
    failed_auth_per_s: Positive = 10
    failed_auth_burst: Positive = 100

    @property
    def enabled(self) -> bool:
        return self.auth == "on"


class LimitSettings(_Group, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Requests in flight at once per credential and per process, whatever the route, from its admission to the
    # last byte of its answer: past it, 429 and the connection is closed. One credential cannot hold more than
    # this share of max_connections (2000), so it cannot take the service from others.
    requests_per_robot: Positive = 16
    requests_per_key: Positive = 100
    # Requests per second per credential and per process (token bucket: the rate sustained, the burst at once).
    robot_requests_per_s: Positive = 50
    robot_burst: Positive = 100
    key_requests_per_s: Positive = 1000
    key_burst: Positive = 2000
    # Ingest requests being read, decoded or stored at once per credential: a client with many connections of
    # large batches gets 429 past this, so it cannot take all of the process's CPU. A robot sends its own
    # readings (8 is generous); an ingest key is a gateway for many robots, often one request per message over
    # a connection pool, so it gets more.
    ingest_requests_per_credential: Positive = 8
    ingest_requests_per_key: Positive = 64
    # Exports and fleet-wide questions each hold a read connection while they run: at most this many at once per
    # credential, and in all (the rest of the read pool stays free for light reads).
    heavy_reads_per_credential: Positive = 2
    heavy_reads_total: Positive = 4
    # CSV exports being sent at once, per credential and in all, from the first byte spooled to the last byte read
    # by the client: each holds up to 1 MiB of memory, then disk, up to max_export_bytes. An export whose client
    # reads nothing for export_stall_timeout_s is dropped, so an unread one frees its slot and its file.
    exports_per_credential: Positive = 2
    exports_total: Positive = 4
    max_export_bytes: Positive = 256 * 1024 * 1024
    export_stall_timeout_s: Positive = 30
    # Live-stream subscribers per credential, and in all, per process.
    subscribers_per_credential: Positive = 10
    max_subscribers: Positive = 1000


class StreamSettings(_Group, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Live stream: readings a subscriber may fall behind by before it is cut off (ingest never waits for it).
    stream_queue_size: Positive = 10_000
    # A client reconnecting with Last-Event-ID is sent what it missed from the database: readings received at
    # most this long ago, at most this many. Past either bound it gets a `gap` event first.
    stream_resume_window_s: Positive = 300
    stream_resume_max_readings: Positive = 10_000


class AlertSettings(_Group, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Committed readings are evaluated in rounds, one per alert_interval_ms in each process, one process at a time:
    # each round sees every robot's newest reading once, however many arrived, so the cost follows the fleet's
    # size, not the ingest rate. Rule changes take effect at the next round.
    alert_interval_ms: Positive = 500
    # Bounds on the rules, so that evaluating them and listing them stay cheap: how many, and how many geofence
    # positions over all of them (each geofence holds at most 10,000; 100,000 list as about 4 MB of JSON).
    max_alert_rules: Positive = 1000
    max_geofence_positions: Positive = 100_000
    # Offline and stationary rules, which hold by the passing of time, are evaluated over the fleet this often.
    alert_tick_ms: Positive = 1000
    # Webhooks: each attempt may take webhook_timeout_s; a failed one is retried after webhook_retry_base_s,
    # doubling up to webhook_retry_max_s, until webhook_max_attempts (20: about 13 hours of retries by default).
    webhook_timeout_s: Positive = 5
    webhook_retry_base_s: Positive = 1
    webhook_retry_max_s: Positive = 3600
    webhook_max_attempts: Positive = 20
    webhook_poll_ms: Positive = 500
    # Webhooks reach public addresses only: not loopback, private, link-local, shared (CGNAT) or metadata ones,
    # checked on the address each delivery connects to. True allows them, for receivers on your own network.
    webhook_allow_private: bool = False
    # Delivery attempts per second per process, at most: a burst of alerts is delivered over a few seconds
    # rather than competing with ingest for the event loop.
    webhook_attempts_per_s: Positive = 100


class MqttSettings(_Group, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # The broker robots publish readings to (issue 22): "mqtt://host:port", or empty for no MQTT. Each process
    # takes a share of the robots' messages (a shared subscription) and answers each on the robot's ack topic
    # after its readings are committed, or with a problem on its errors topic.
    mqtt_url: str = ""
    # The service's own broker account; its password is read from mqtt_secret_file (never an environment variable,
    # which any child process and many crash reports show).
    mqtt_username: str = "fleet-service"
    mqtt_secret_file: str = ""
    # Where the broker reads its password and ACL files: the service writes them there from the robots' live
    # tokens whenever credentials change (checked every mqtt_accounts_poll_ms), and signals the broker whose pid
    # is in mosquitto.pid there to reload them. Empty: the broker's accounts are managed elsewhere.
    mqtt_accounts_dir: str = ""
    mqtt_accounts_poll_ms: Positive = 1000
    # Messages taken from the broker but not yet answered, per process: past it the service stops reading from
    # the broker (TCP pushes back on it, and it queues for the robots) instead of growing memory.
    mqtt_max_in_flight: Positive = 20_000

    @property
    def enabled(self) -> bool:
        return bool(self.mqtt_url)

    @property
    def broker_address(self) -> tuple[str, int]:
        url = urlsplit(self.mqtt_url)
        if url.scheme != "mqtt" or not url.hostname:
            raise ValueError(f"FLEET_MQTT_URL must be mqtt://host[:port], not {self.mqtt_url[:40]!r}")
        return url.hostname, url.port or 1883


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    ingest: IngestSettings = msgspec.field(default_factory=IngestSettings)
    query: QuerySettings = msgspec.field(default_factory=QuerySettings)
    stream: StreamSettings = msgspec.field(default_factory=StreamSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    limits: LimitSettings = msgspec.field(default_factory=LimitSettings)
    alerts: AlertSettings = msgspec.field(default_factory=AlertSettings)
    mqtt: MqttSettings = msgspec.field(default_factory=MqttSettings)

    @property
    def worker_count(self) -> int:
        """FLEET_WORKERS, or for "auto": one process per core this process may run on, less a quarter of them
        (rounded down) when the database is on this machine, where it takes about a fifth of the CPU of single
        readings. On 2 cores with the database beside it, single readings from 1,000 robots ran fastest with 2
        workers, slower with 1 or 3 (benchmarks/NOTES.md, issue 25)."""
        workers = self.server.workers
        if workers != "auto":
            return workers
        cores = len(os.sched_getaffinity(0))
        return max(1, cores - cores // 4 if self.database.is_local else cores)

    def __post_init__(self) -> None:
        if self.mqtt.enabled:
            self.mqtt.broker_address  # noqa: B018 (checked now, not at the first connection)
            if not self.mqtt.mqtt_secret_file:
                raise ValueError("FLEET_MQTT_URL needs FLEET_MQTT_SECRET_FILE: the file with the service's password")
        retention = self.database.retention
        if retention == "off":
            return
        period = self.database.retention_period
        if period is None:
            raise ValueError(f"FLEET_RETENTION must be off or a duration such as 90d, not {retention[:20]!r}")
        if period.total_seconds() <= self.ingest.max_past_s:
            raise ValueError(
                f"FLEET_RETENTION ({retention}) must be longer than FLEET_MAX_PAST_S ({self.ingest.max_past_s} s):"
                " readings the API still accepts would be dropped"
            )


class SettingsError(ValueError):
    """A ``FLEET_*`` variable is unknown or has a bad value; the message names it."""


def _group_of_field() -> dict[str, str]:
    owners: dict[str, str] = {}
    for group in msgspec.structs.fields(Settings):
        for name in group.type.__struct_fields__:
            if name in owners:
                raise AssertionError(f"setting {name} is declared in two groups")
            owners[name] = group.name
    return owners


GROUP_OF_FIELD = _group_of_field()


def settings_from(values: Mapping[str, Any], base: Settings | None = None, *, strict: bool = True) -> Settings:
    """Settings from flat ``field: value`` pairs, on top of ``base`` (defaults when None)."""
    grouped: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        group = GROUP_OF_FIELD.get(name)
        if group is None:
            raise SettingsError(f"unknown setting {ENV_PREFIX}{name.upper()}")
        grouped.setdefault(group, {})[name] = value
    merged = msgspec.to_builtins(base or Settings())
    for group, changes in grouped.items():
        merged[group].update(changes)
    try:
        return msgspec.convert(merged, Settings, strict=strict)
    except msgspec.ValidationError as exc:
        raise SettingsError(_name_variable(str(exc))) from None


def replace_settings(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` with some fields changed, named flat as in the environment."""
    return settings_from(changes, settings)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``FLEET_<FIELD>`` variables; unset ones keep their defaults, unknown ones are an error."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for variable, value in env.items():
        if not variable.startswith(ENV_PREFIX) or variable in SCRIPT_ONLY_VARIABLES:
            continue
        name = variable.removeprefix(ENV_PREFIX).lower()
        if name not in GROUP_OF_FIELD:
            raise SettingsError(f"unknown setting {variable} (is it misspelt?)")
        values[name] = value
    # strict=False parses the strings ("5000", "true") into the declared types; constraints still apply.
    return settings_from(values, strict=False)


def _name_variable(message: str) -> str:
    """msgspec says ``... - at `$.ingest.flush_max_rows```; say which variable that is."""
    head, _, path = message.partition(" - at `$.")
    field = path.rstrip("`").split(".")[-1]
    return f"{ENV_PREFIX}{field.upper()}: {head}" if field else message
