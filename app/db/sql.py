"""Every SQL statement the service runs, as named constants. Values go in only as $n parameters.

Column lists come from the reading's one declaration (``app.ingest.reading.COLUMNS``), never restated.
"""

from app.ingest.reading import COLUMN_NAMES, COLUMNS, STATUSES

_READING_COLUMNS = ", ".join(COLUMN_NAMES)
_READING_COLUMNS_AS_TEXT = ", ".join(f"{name}::text" if name == "status" else name for name in COLUMN_NAMES)

# --- migrations ----------------------------------------------------------------------------------------------

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

# Session-level lock so that several workers starting at once apply each migration exactly once.
LOCK_MIGRATIONS = "SELECT pg_advisory_lock($1)"
UNLOCK_MIGRATIONS = "SELECT pg_advisory_unlock($1)"
DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = $1"
CREATE_DATABASE_PREFIX = "CREATE DATABASE "  # + a quoted identifier: DDL takes no parameters
SELECT_APPLIED_MIGRATIONS = "SELECT version FROM schema_migrations"
INSERT_MIGRATION = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"

# --- commit positions ------------------------------------------------------------------------------------------

# Every reading's stored_xid is the id of the transaction that stored it (migrations/012). Below the xmin of the
# current snapshot every transaction has ended: "stored_xid < COMMITTED_BELOW" is a set of readings that no commit
# can join any more, which is what lets the rollups, the latest state and the alert rounds follow the readings
# exactly once each, from the database alone, whatever process stored them and whether or not it survived.
COMMITTED_BELOW = "txid_snapshot_xmin(txid_current_snapshot())"

# --- health --------------------------------------------------------------------------------------------------

PING = "SELECT 1"

# --- ingest --------------------------------------------------------------------------------------------------

TELEMETRY_TABLE = "telemetry"
STAGING_TABLE = "telemetry_staging"
# stored_at and stored_xid are left to their defaults: the transaction's start and its id.
TELEMETRY_COLUMNS = ("robot_key", *COLUMN_NAMES)

# A flush's stored_at (its transaction's start) and stored_xid, and a notice to every other API process, delivered
# at COMMIT: "f <instance> <stored_xid>", so a process streaming to subscribers can read that flush's rows
# (COMMIT_CHANNEL; see SELECT_FLUSH_ROWS and app.ingest.relay). One round trip for all.
COMMIT_CHANNEL = "fleet_commits"
SELECT_TRANSACTION_TIME = f"""
SELECT transaction_timestamp(), txid_current(), pg_notify('{COMMIT_CHANNEL}', 'f ' || $1::text || ' ' || txid_current())
"""
# A relay checkpoint on the same channel: "c <instance> <position>", every transaction below the position ended
# before the notice was sent, so their notices arrive before it (notices arrive in commit order).
SEND_CHECKPOINT = f"SELECT pg_notify('{COMMIT_CHANNEL}', $1::text || ' ' || {COMMITTED_BELOW})"
SELECT_COMMITTED_BELOW = f"SELECT {COMMITTED_BELOW}"
# The flushes stored at or after a position, by their positions (the relay's catch-up after a LISTEN was lost).
SELECT_FLUSHES_SINCE = "SELECT DISTINCT stored_xid FROM telemetry WHERE stored_xid >= $1 ORDER BY 1"

REGISTER_ROBOTS = """
INSERT INTO robots (robot_id)
SELECT unnest($1::text[])
ON CONFLICT (robot_id) DO NOTHING
"""

SELECT_ROBOT_KEYS = "SELECT robot_id, robot_key FROM robots WHERE robot_id = ANY($1::text[])"

# Only the slow path (a batch that hit the unique index) uses the staging table. INCLUDING DEFAULTS: its rows get
# their stored_at and stored_xid as COPY into telemetry gives them; without it a replay stored a whole flush with
# neither, and those readings were left out of every rollup and of other processes' streams.
CREATE_STAGING_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS telemetry_staging (LIKE telemetry INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""

INSERT_STAGED_SKIP_DUPLICATES = """
INSERT INTO telemetry SELECT * FROM telemetry_staging
ON CONFLICT (robot_key, time) DO NOTHING
RETURNING robot_key, time
"""

# Moves each robot's latest state forward. "Newer wins" (reading.is_newer) in SQL: readings rank by
# (min(timestamp, received_at), timestamp), so a late reading never regresses the state and a future-stamped one
# does not hide the next. One array per column, in COLUMNS order after the key, then received_at.
_UNNEST = ", ".join(f"${i}::{column.sql_type}[]" for i, column in enumerate(COLUMNS, start=2))
_NEWER_WINS = "(least(excluded.time, excluded.received_at), excluded.time) > (least(l.time, l.received_at), l.time)"
_SET_LATEST = ", ".join(f"{name} = excluded.{name}" for name in (*COLUMN_NAMES, "received_at"))
UPSERT_LATEST = f"""
INSERT INTO robot_latest AS l (robot_key, {_READING_COLUMNS}, received_at)
SELECT * FROM unnest($1::integer[], {_UNNEST}, ${len(COLUMNS) + 2}::timestamptz[])
ON CONFLICT (robot_key) DO UPDATE
SET {_SET_LATEST}
WHERE {_NEWER_WINS}
"""

# The database's follow-up of the latest state, in each alert round (app.alerts.engine): each robot's newest
# reading stored at positions [$1, $2), under the same rule, with stored_at as when the server had it (as the
# ingest path notes it), offered to robot_latest. Whatever a process did not write (it crashed, or the write
# failed) is written here, by any process. Returns every robot with readings in the range, and its newest's
# stored_at (for the evaluation lag).
# The ranking sorts only the key and two times; each robot's newest row is then fetched by its primary key: sorting
# whole rows made this cost PostgreSQL about as much per reading as storing it (92 against 32 ms for 42,000).
FOLLOW_LATEST = f"""
WITH ranked AS (
    SELECT DISTINCT ON (robot_key) robot_key, time
    FROM telemetry
    WHERE stored_xid >= $1 AND stored_xid < $2
    ORDER BY robot_key, least(time, stored_at) DESC, time DESC
), newest AS (
    SELECT t.robot_key, {", ".join("t." + c for c in COLUMN_NAMES)}, t.stored_at
    FROM ranked r
    JOIN telemetry t ON t.robot_key = r.robot_key AND t.time = r.time
), moved AS (
    INSERT INTO robot_latest AS l (robot_key, {_READING_COLUMNS}, received_at)
    SELECT * FROM newest
    ON CONFLICT (robot_key) DO UPDATE
    SET {_SET_LATEST}
    WHERE {_NEWER_WINS}
)
SELECT robot_key, stored_at FROM newest
"""

# --- history -------------------------------------------------------------------------------------------------


# Keyset page, newest first: $2 <= time < $3, and time < $4 (the cursor). The (robot_key, time DESC) index
# returns rows already in order, so LIMIT stops after $5 rows.
SELECT_HISTORY_PAGE = f"""
SELECT {_READING_COLUMNS_AS_TEXT}
FROM telemetry
WHERE robot_key = $1 AND time >= $2 AND time < $3 AND time < $4
ORDER BY time DESC
LIMIT $5
"""

# Live-stream resume: readings stored after a stream position ($1 stored_at, $2 robot_id, $3 time), in the
# stream's order, for every robot or those in $4, at most $5. $6 is the oldest stored_at a resume goes back to.
# The BRIN index on stored_at skips the block ranges of older rows in every chunk.
SELECT_STORED_SINCE = f"""
SELECT r.robot_id, t.stored_at, {", ".join("t." + c for c in _READING_COLUMNS_AS_TEXT.split(", "))}
FROM telemetry t JOIN robots r USING (robot_key)
WHERE t.stored_at >= greatest($1::timestamptz, $6::timestamptz)
  AND (t.stored_at, r.robot_id, t.time) > ($1::timestamptz, $2::text, $3::timestamptz)
  AND ($4::text[] IS NULL OR r.robot_id = ANY($4))
ORDER BY t.stored_at, r.robot_id, t.time
LIMIT $5
"""

# One committed flush's rows, by its position ($1), in the stream's order, for another process's subscribers.
# (Not by xmin: COPY runs in a savepoint, so the rows' xmin is a subtransaction's; stored_xid is the top one's.)
SELECT_FLUSH_ROWS = f"""
SELECT r.robot_id, t.stored_at, {", ".join("t." + c for c in _READING_COLUMNS_AS_TEXT.split(", "))}
FROM telemetry t JOIN robots r USING (robot_key)
WHERE t.stored_xid = $1
ORDER BY r.robot_id, t.time
"""

# --- latest state ------------------------------------------------------------------------------------------------

# $1 status or NULL, $2 battery_below or NULL, $3 online cutoff (received_at >= $3 is online: the server's
# clock, not the robot's), $4 online filter or NULL, $5 robot_id or NULL. Reads only the registry and latest
# state, one row per robot. first_seen is never after the first reading's arrival (registration follows it).
SELECT_ROBOT_STATES = f"""
SELECT {", ".join(f"l.{c}" for c in _READING_COLUMNS_AS_TEXT.split(", "))},
       r.robot_id, least(r.first_seen, l.received_at), l.received_at >= $3 AS online, r.tags, l.received_at
FROM robot_latest l
JOIN robots r USING (robot_key)
WHERE ($1::text IS NULL OR l.status = $1::robot_status)
  AND ($2::float8 IS NULL OR l.battery_level < $2)
  AND ($4::boolean IS NULL OR (l.received_at >= $3) = $4)
  AND ($5::text IS NULL OR r.robot_id = $5)
ORDER BY r.robot_id
"""

# --- downsampled history -----------------------------------------------------------------------------------------

# One row per time bucket of one robot over [$4, $5), every bucket included: those without readings have a count
# of 0 and nulls, so a chart shows a gap as a gap. $2 bucket width, $3 time zone name. Buckets are cut on the
# zone's wall clock (time_bucket with the zone), so day buckets follow local days, DST included; the series of
# bucket starts is generated on local time for the same reason (generate_series has no zone in PostgreSQL 15,
# and the Apache edition has no time_bucket_gapfill). Readings per status give the share of the bucket in it.
SELECT_BUCKETS = """
WITH filled AS (
    SELECT time_bucket($2::interval, time, $3::text) AS bucket,
           count(*) AS readings,
           avg(battery_level) AS battery_avg, min(battery_level) AS battery_min, max(battery_level) AS battery_max,
           avg(battery_voltage) AS voltage_avg, min(battery_voltage) AS voltage_min,
           max(battery_voltage) AS voltage_max,
           last(latitude, time) FILTER (WHERE latitude IS NOT NULL) AS latitude,
           last(longitude, time) FILTER (WHERE latitude IS NOT NULL) AS longitude,
           count(*) FILTER (WHERE status = 'idle') AS idle,
           count(*) FILTER (WHERE status = 'moving') AS moving,
           count(*) FILTER (WHERE status = 'working') AS working,
           count(*) FILTER (WHERE status = 'charging') AS charging,
           count(*) FILTER (WHERE status = 'error') AS error
    FROM telemetry
    WHERE robot_key = $1 AND time >= $4 AND time < $5
    GROUP BY bucket
), series AS (
    SELECT local_start AT TIME ZONE $3::text AS bucket
    FROM generate_series(
        time_bucket($2::interval, $4::timestamptz AT TIME ZONE $3::text),
        ($5::timestamptz - interval '1 microsecond') AT TIME ZONE $3::text,
        $2::interval
    ) AS local_start
)
SELECT s.bucket, coalesce(f.readings, 0) AS readings,
       f.battery_avg, f.battery_min, f.battery_max, f.voltage_avg, f.voltage_min, f.voltage_max,
       f.latitude, f.longitude,
       coalesce(f.idle, 0) AS idle, coalesce(f.moving, 0) AS moving, coalesce(f.working, 0) AS working,
       coalesce(f.charging, 0) AS charging, coalesce(f.error, 0) AS error
FROM series s
LEFT JOIN filled f USING (bucket)
ORDER BY s.bucket
"""

# --- rollups ----------------------------------------------------------------------------------------------------

TRY_ROLLUP_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('fleet-rollups'))"
# The watermark (NULL: no pass ran yet), and how far this pass may go: every reading whose transaction has ended.
START_ROLLUP_PASS = f"""
SELECT rolled_up_xid, status_gap_s, {COMMITTED_BELOW} AS settled
FROM rollup_state FOR UPDATE
"""
SET_ROLLED_UP_TO = "UPDATE rollup_state SET rolled_up_xid = $1"

# SELECT_BUCKETS from the minute aggregate (telemetry_1m, migrations/017): the minutes of [$6, $7) from
# telemetry_1m ($7: how far its last refresh went, at most the range's last whole minute), and from the readings
# the rest of the range ([$4, $6) and [$7, $5)) and every minute of [$6, $7) holding a reading stored at or after
# $8, the position that refresh had covered: such a minute may be materialized without that reading. $7 and $8
# are read first, in the same repeatable-read snapshot, and passed as parameters, not a subquery, so the planner
# sees how recent they are and reads those rows through the stored_xid BRIN index (and the columnstore's
# stored_xid minmax) instead of every reading of the range.
FORCE_CUSTOM_PLAN = "SET LOCAL plan_cache_mode = force_custom_plan"  # a generic plan cannot know $8 is recent
SELECT_BUCKETS_ROLLED_UP = """
WITH stale AS MATERIALIZED (
    SELECT DISTINCT time_bucket('1 minute', time) AS minute
    FROM telemetry
    WHERE robot_key = $1 AND time >= $6 AND time < $7 AND stored_xid >= $8
), parts AS (
    SELECT time_bucket($2::interval, minute, $3::text) AS bucket, readings::integer, battery_sum, battery_min,
           battery_max, voltage_sum, voltage_count::integer, voltage_min, voltage_max, located_at, latitude,
           longitude, idle::integer, moving::integer, working::integer, charging::integer, error::integer
    FROM telemetry_1m m
    WHERE robot_key = $1 AND minute >= $6 AND minute < $7
      AND NOT EXISTS (SELECT FROM stale s WHERE s.minute = m.minute)
    UNION ALL
    SELECT time_bucket($2::interval, time, $3::text), 1, battery_level, battery_level, battery_level,
           battery_voltage, (battery_voltage IS NOT NULL)::integer, battery_voltage, battery_voltage,
           CASE WHEN latitude IS NOT NULL THEN time END, latitude, longitude,
           (status = 'idle')::integer, (status = 'moving')::integer, (status = 'working')::integer,
           (status = 'charging')::integer, (status = 'error')::integer
    FROM telemetry
    WHERE robot_key = $1
      AND ((time >= $4 AND time < least($6, $5)) OR (time >= $7 AND time < $5)
           OR (time >= $6 AND time < $7 AND time_bucket('1 minute', time) IN (SELECT minute FROM stale)))
), filled AS (
    SELECT bucket, sum(readings) AS readings,
           sum(battery_sum) / sum(readings) AS battery_avg, min(battery_min) AS battery_min,
           max(battery_max) AS battery_max,
           sum(voltage_sum) / nullif(sum(voltage_count), 0) AS voltage_avg, min(voltage_min) AS voltage_min,
           max(voltage_max) AS voltage_max,
           last(latitude, located_at) FILTER (WHERE located_at IS NOT NULL) AS latitude,
           last(longitude, located_at) FILTER (WHERE located_at IS NOT NULL) AS longitude,
           sum(idle) AS idle, sum(moving) AS moving, sum(working) AS working, sum(charging) AS charging,
           sum(error) AS error
    FROM parts
    GROUP BY bucket
)"""
_BUCKET_SERIES = SELECT_BUCKETS[SELECT_BUCKETS.index(", series AS (") :]
SELECT_BUCKETS_ROLLED_UP += _BUCKET_SERIES

# --- quarter-hour periods (telemetry_15m): daily activity and path length --------------------------------------

PERIOD = "interval '15 minutes'"
_STATUS_SECONDS = tuple(f"{s}_s" for s in STATUSES)
_PERIOD_COLUMNS = ", ".join(
    (
        "robot_key, period, first_at, last_at, last_status",
        *STATUSES,
        *_STATUS_SECONDS,
        "located, first_latitude, first_longitude, last_latitude, last_longitude, metres",
    )
)
_SET_PERIOD = ", ".join(f"{c} = excluded.{c}" for c in _PERIOD_COLUMNS.split(", ")[2:])
# Per period of a robot: its first and last reading, the last one's status, readings and seconds per status.
_STATUS_AGGREGATES = ", ".join(
    (
        "period, min(time), max(time), last(status, time)",
        *(f"count(*) FILTER (WHERE status = '{s}')" for s in STATUSES),
        *(f"coalesce(sum(held_s) FILTER (WHERE status = '{s}'), 0)" for s in STATUSES),
    )
)
# Per period of a robot: its readings with a location, the first and last location, the path between them.
_PATH_AGGREGATES = """
    count(latitude),
    first(latitude, time) FILTER (WHERE latitude IS NOT NULL),
    first(longitude, time) FILTER (WHERE latitude IS NOT NULL),
    last(latitude, time) FILTER (WHERE latitude IS NOT NULL),
    last(longitude, time) FILTER (WHERE latitude IS NOT NULL),
    coalesce(sum(step_m), 0)
"""
# Readings (robot_key, time, status, latitude, longitude, period) -> the same, plus held_s, the seconds the
# reading's status lasts until the next reading of its period (NULL for the last), at most {caps}.
_HELD_IN_PERIOD = """
SELECT *, CASE WHEN next_at IS NOT NULL THEN greatest(0, extract(epoch FROM least(next_at, {caps}) - time))::float8
          END AS held_s
FROM (
    SELECT *, lead(time) OVER (PARTITION BY robot_key, period ORDER BY time) AS next_at
    FROM {readings} r
) n
"""
# ... -> the same, plus step_m, the metres from the previous reading with a location in the period.
_STEP_IN_PERIOD = """
SELECT *, haversine_m(lag(latitude) OVER p, lag(longitude) OVER p, latitude, longitude) AS step_m
FROM {readings} r
WINDOW p AS (PARTITION BY robot_key, period, latitude IS NULL ORDER BY time)
"""
# A pass keeps each row equal to its period's readings stored before the new watermark, reading each new reading
# once (rolling up a period again at every pass until it ends would read a reading 45 times at one a second):
# 1. APPEND_FRESH_PERIODS ($1, $2: the positions the pass takes; $3: the status gap in seconds): the new
#    readings of each period, rolled up alone, are appended to the period's row when they all follow its last
#    reading, or become the row of a period that had none (none of its readings was stored before $1). Appending
#    adds the step from the row's last reading to the first new one: its status held until then (at most $3 s),
#    and the path between. It returns the periods it left alone: those with a reading at or before the row's last.
# 2. ROLL_UP_LATE_PERIODS ($1, $2: those periods' robot keys and starts; $3: the gap; $4: the watermark): each is
#    rolled up again from all of its readings stored before position $4 (or before positions existed).
_LATE_PERIOD_READINGS = f"""(
    SELECT t.robot_key, t.time, t.status, t.latitude, t.longitude, d.period
    FROM unnest($1::integer[], $2::timestamptz[]) AS d (robot_key, period)
    JOIN telemetry t ON t.robot_key = d.robot_key AND t.time >= d.period AND t.time < d.period + {PERIOD}
    WHERE t.stored_xid < $4 OR t.stored_xid IS NULL
)"""
_FRESH_PERIOD_READINGS = f"""(
    SELECT robot_key, time, status, latitude, longitude, time_bucket({PERIOD}, time) AS period
    FROM telemetry
    WHERE stored_xid >= $1 AND stored_xid < $2
)"""
_AXES = ("latitude", "longitude")
_JOINED_HELD_S = "least(extract(epoch FROM excluded.first_at - p.last_at)::float8, $3)"
_APPEND_PERIOD = ", ".join(
    (
        "last_at = excluded.last_at, last_status = excluded.last_status",
        *(f"{s} = p.{s} + excluded.{s}" for s in STATUSES),
        *(
            f"{s}_s = p.{s}_s + excluded.{s}_s + CASE WHEN p.last_status = '{s}' THEN {_JOINED_HELD_S} ELSE 0 END"
            for s in STATUSES
        ),
        "located = p.located + excluded.located",
        *(f"first_{c} = CASE WHEN p.located > 0 THEN p.first_{c} ELSE excluded.first_{c} END" for c in _AXES),
        *(f"last_{c} = CASE WHEN excluded.located > 0 THEN excluded.last_{c} ELSE p.last_{c} END" for c in _AXES),
        "metres = p.metres + excluded.metres + coalesce(haversine_m(p.last_latitude, p.last_longitude, "
        "excluded.first_latitude, excluded.first_longitude), 0)",
    )
)  # fmt: skip
# Every period again, from the readings stored at positions [$1, $2) or before positions existed: with $1 = 0, the
# first pass, or one with another status gap than the last.
_ALL_PERIOD_READINGS = f"""(
    SELECT robot_key, time, status, latitude, longitude, time_bucket({PERIOD}, time) AS period
    FROM telemetry
    WHERE stored_xid IS NULL OR (stored_xid >= $1 AND stored_xid < $2)
)"""


def _roll_up_periods(readings: str, on_conflict: str = f"DO UPDATE SET {_SET_PERIOD}") -> str:
    held = _HELD_IN_PERIOD.format(caps="time + $3 * interval '1 second'", readings=readings)
    return f"""
INSERT INTO telemetry_15m AS p ({_PERIOD_COLUMNS})
SELECT robot_key, {_STATUS_AGGREGATES}, {_PATH_AGGREGATES}
FROM ({_STEP_IN_PERIOD.format(readings=f"({held})")}) s
GROUP BY robot_key, period
ON CONFLICT (robot_key, period) {on_conflict}
"""


ROLL_UP_LATE_PERIODS = _roll_up_periods(_LATE_PERIOD_READINGS)
_FRESH_HELD = _HELD_IN_PERIOD.format(caps="time + $3 * interval '1 second'", readings=_FRESH_PERIOD_READINGS)
APPEND_FRESH_PERIODS = f"""
WITH fresh AS MATERIALIZED (
    SELECT robot_key, {_STATUS_AGGREGATES}, {_PATH_AGGREGATES}
    FROM ({_STEP_IN_PERIOD.format(readings=f"({_FRESH_HELD})")}) s
    GROUP BY robot_key, period
), appended AS (
    INSERT INTO telemetry_15m AS p ({_PERIOD_COLUMNS})
    SELECT * FROM fresh
    ON CONFLICT (robot_key, period) DO UPDATE SET {_APPEND_PERIOD} WHERE excluded.first_at > p.last_at
    RETURNING robot_key, period
)
SELECT f.robot_key, f.period
FROM fresh f
WHERE NOT EXISTS (SELECT 1 FROM appended a WHERE a.robot_key = f.robot_key AND a.period = f.period)
"""
ROLL_UP_ALL_PERIODS = _roll_up_periods(_ALL_PERIOD_READINGS)
DELETE_PERIODS = "DELETE FROM telemetry_15m"
SET_STATUS_GAP = "UPDATE rollup_state SET status_gap_s = $1"
SELECT_ROLLUP_STATE = "SELECT rolled_up_xid, status_gap_s, refreshed_xid, refreshed_to FROM rollup_state"

# What a period query takes from telemetry itself, read in the same snapshot as the watermark $5: the readings of
# the range's partial periods at either end ([$1, $3) and [$4, $2)), and of whole periods in [$3, $4) that hold
# readings stored at or after the watermark (their rows are missing or out of date); the other periods' rows.
# The ends are read robot by robot: the index leads with robot_key, and a range of minutes is a small part of the
# chunk a scan by time alone would read through.
_PERIODS_OF_RANGE = f"""
dirty AS (
    SELECT DISTINCT robot_key, time_bucket({PERIOD}, time) AS period
    FROM telemetry
    WHERE time >= $3 AND time < $4 AND stored_xid >= $5
), readings AS (
    SELECT t.robot_key, t.time, t.status, t.latitude, t.longitude, time_bucket({PERIOD}, t.time) AS period
    FROM robots r
    JOIN telemetry t ON t.robot_key = r.robot_key AND t.time >= $1 AND t.time < $3
    UNION ALL
    SELECT t.robot_key, t.time, t.status, t.latitude, t.longitude, time_bucket({PERIOD}, t.time) AS period
    FROM robots r
    JOIN telemetry t ON t.robot_key = r.robot_key AND t.time >= $4 AND t.time < $2
    UNION ALL
    SELECT t.robot_key, t.time, t.status, t.latitude, t.longitude, d.period
    FROM dirty d
    JOIN telemetry t ON t.robot_key = d.robot_key AND t.time >= d.period AND t.time < d.period + {PERIOD}
), stored AS (
    SELECT * FROM telemetry_15m p
    WHERE period >= $3 AND period < $4
      AND NOT EXISTS (SELECT 1 FROM dirty d WHERE d.robot_key = p.robot_key AND d.period = p.period)
)"""

# --- fleet questions ---------------------------------------------------------------------------------------------

# Path length (sum of haversine steps between successive positioned readings) per robot over $1 <= time < $2.
SELECT_DISTANCES = """
SELECT r.robot_id, d.readings, d.metres
FROM (
    SELECT robot_key, count(*) AS readings,
           coalesce(sum(haversine_m(prev_lat, prev_lon, latitude, longitude)), 0) AS metres
    FROM (
        SELECT robot_key, latitude, longitude,
               lag(latitude) OVER w AS prev_lat, lag(longitude) OVER w AS prev_lon
        FROM telemetry
        WHERE time >= $1 AND time < $2 AND latitude IS NOT NULL
        WINDOW w AS (PARTITION BY robot_key ORDER BY time)
    ) steps
    GROUP BY robot_key
) d
JOIN robots r USING (robot_key)
ORDER BY r.robot_id
"""

# Seconds per status per robot over [$1, $2): each reading's status lasts until the next reading, at most
# $3 seconds after the reading (a longer silence is not counted as time in any status), and never past $2 nor past
# $4 (now): no robot is credited with time that has not happened yet. A status that runs across the range's start
# counts from the start: the robot's last reading before it (within $3 s) is carried in (CARRIED_IN), so a status
# held across midnight is split between the two days, as the seconds of each day add up to those of both.
_CARRIED_IN = """
    SELECT c.robot_key, c.time, c.status{extra}
    FROM robots rb
    CROSS JOIN LATERAL (
        SELECT t.robot_key, t.time, t.status{extra}
        FROM telemetry t
        WHERE t.robot_key = rb.robot_key AND t.time < $1 AND t.time >= $1 - {gap} * interval '1 second'
        ORDER BY t.time DESC
        LIMIT 1
    ) c"""
SELECT_STATUS_SECONDS = f"""
SELECT r.robot_id, a.status::text, sum(a.seconds) AS seconds
FROM (
    SELECT robot_key, status,
           greatest(0, extract(epoch FROM
               least(coalesce(lead(time) OVER w, $2), time + $3 * interval '1 second', $2, $4)
               - greatest(time, $1))) AS seconds
    FROM (
        SELECT robot_key, time, status FROM telemetry WHERE time >= $1 AND time < $2
        UNION ALL
        {_CARRIED_IN.format(extra="", gap="$3")}
    ) readings
    WINDOW w AS (PARTITION BY robot_key ORDER BY time)
) a
JOIN robots r USING (robot_key)
WHERE a.status IS NOT NULL
GROUP BY r.robot_id, a.status
ORDER BY r.robot_id, a.status
"""

# SELECT_STATUS_SECONDS from the periods: [$1, $2) the range, [$3, $4) its whole periods before now, $5 the
# watermark, $6 the status gap, $7 now. A stored period's seconds are summed already; its last reading's status
# lasts until the next period's first reading, capped as in SELECT_STATUS_SECONDS. The reading carried in from
# before the range is a period of its own, of one reading, whose status is held from $1.
_CAPS = "{at} + $6 * interval '1 second', $2, $7"
_STATUS_TOTALS = ", ".join(
    f"sum({s}) AS {s}, sum({s}_s) + coalesce(sum(last_held_s) FILTER (WHERE last_status = '{s}'), 0) AS {s}_s"
    for s in STATUSES
)
SELECT_STATUS_SECONDS_ROLLED_UP = f"""
WITH {_PERIODS_OF_RANGE}, periods AS (
    SELECT robot_key, period, first_at, last_at, last_status, {", ".join((*STATUSES, *_STATUS_SECONDS))}
    FROM stored
    UNION ALL
    SELECT robot_key, {_STATUS_AGGREGATES}
    FROM ({_HELD_IN_PERIOD.format(caps=_CAPS.format(at="time"), readings="readings")}) h
    GROUP BY robot_key, period
    UNION ALL
    SELECT robot_key, '-infinity', time, time, status, {", ".join(f"(status = '{s}')::integer" for s in STATUSES)},
           {", ".join("0" for _ in STATUSES)}
    FROM ({_CARRIED_IN.format(extra="", gap="$6")}) c
), joined AS (
    SELECT *, greatest(0, extract(epoch FROM
               least(coalesce(lead(first_at) OVER w, $2), {_CAPS.format(at="last_at")}) - greatest(last_at, $1)))
               AS last_held_s
    FROM periods
    WINDOW w AS (PARTITION BY robot_key ORDER BY period)
), totals AS (
    SELECT robot_key, {_STATUS_TOTALS}
    FROM joined
    GROUP BY robot_key
)
SELECT r.robot_id, a.status, a.seconds
FROM totals t
JOIN robots r USING (robot_key)
CROSS JOIN LATERAL (VALUES {", ".join(f"('{s}', t.{s}, t.{s}_s)" for s in STATUSES)}) AS a (status, readings, seconds)
WHERE a.readings > 0
ORDER BY r.robot_id, a.status
"""

# SELECT_DISTANCES from the periods: [$1, $2) the range, [$3, $4) its whole periods, $5 the watermark. A stored
# period's path is summed already; the step from its last location to the next period's first is added here.
SELECT_DISTANCES_ROLLED_UP = f"""
WITH {_PERIODS_OF_RANGE}, periods AS (
    SELECT robot_key, period, located, first_latitude, first_longitude, last_latitude, last_longitude, metres
    FROM stored
    WHERE located > 0
    UNION ALL
    SELECT robot_key, period, {_PATH_AGGREGATES}
    FROM ({_STEP_IN_PERIOD.format(readings="(SELECT * FROM readings WHERE latitude IS NOT NULL)")}) s
    GROUP BY robot_key, period
), joined AS (
    SELECT robot_key, located, metres,
           haversine_m(lag(last_latitude) OVER w, lag(last_longitude) OVER w, first_latitude, first_longitude)
               AS between_m
    FROM periods
    WINDOW w AS (PARTITION BY robot_key ORDER BY period)
)
SELECT r.robot_id, d.readings, d.metres
FROM (
    SELECT robot_key, sum(located)::bigint AS readings, sum(metres) + coalesce(sum(between_m), 0) AS metres
    FROM joined
    GROUP BY robot_key
) d
JOIN robots r USING (robot_key)
ORDER BY r.robot_id
"""

# --- export ------------------------------------------------------------------------------------------------------

# Timestamps as RFC 3339 in UTC, to the microsecond, so an exported row can be queried or re-sent as is.
# Text cells that a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a leading
# apostrophe: robot ids and pose frames are free text. Numbers stay numbers (-3.5 is not a formula) and fields
# is a JSON object (it starts with "{").
EXPORT_CSV_COLUMNS = ("timestamp", "robot_id", *COLUMN_NAMES[1:])


def _csv_safe(expression: str) -> str:
    return f"CASE WHEN {expression} ~ '^[-=+@\\t\\r]' THEN '''' || {expression} ELSE {expression} END"


_EXPORTED = ", ".join(_csv_safe(name) if name == "pose_frame" else name for name in COLUMN_NAMES[1:])
EXPORT_CSV = f"""
SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), {_csv_safe("$1::text")},
       {_EXPORTED}
FROM telemetry
WHERE robot_key = $2 AND time >= $3 AND time < $4
ORDER BY time
"""

# --- credentials ---------------------------------------------------------------------------------------------------

# What makes a credential live: not revoked, not expired (one rule for every question below).
LIVE_CREDENTIAL = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"

# A live credential by its token's hash.
SELECT_CREDENTIAL_BY_HASH = f"""
SELECT c.credential_id, c.kind, c.name, c.scopes, c.robot_ids, c.fleet_tag, c.expires_at, r.robot_id
FROM credentials c
LEFT JOIN robots r USING (robot_key)
WHERE c.token_hash = $1 AND {LIVE_CREDENTIAL}
"""

# Every live credential with its hash, newest first, at most $1: what each process loads into its token cache at
# start and after every credential change, so that a fleet's requests find their tokens verified already.
SELECT_LIVE_CREDENTIALS = f"""
SELECT c.token_hash, c.credential_id, c.kind, c.name, c.scopes, c.robot_ids, c.fleet_tag, c.expires_at, r.robot_id
FROM credentials c
LEFT JOIN robots r USING (robot_key)
WHERE {LIVE_CREDENTIAL}
ORDER BY c.created_at DESC
LIMIT $1
"""

# Of these credentials, the ones that still work: what a revocation ends is the rest.
SELECT_LIVE_CREDENTIAL_IDS = f"""
SELECT credential_id FROM credentials WHERE credential_id = ANY($1::int[]) AND {LIVE_CREDENTIAL}
"""

# The broker's accounts: each robot's newest live token that has a broker hash (one line per robot in its password
# file; during a rotation's grace the old token works over HTTP only).
SELECT_BROKER_ACCOUNTS = f"""
SELECT DISTINCT ON (r.robot_id) r.robot_id, c.broker_hash
FROM credentials c
JOIN robots r USING (robot_key)
WHERE c.kind = 'robot' AND c.broker_hash IS NOT NULL AND {LIVE_CREDENTIAL}
ORDER BY r.robot_id, c.created_at DESC
"""

SELECT_CREDENTIAL_EPOCH = "SELECT epoch FROM credential_epoch"
BUMP_CREDENTIAL_EPOCH = "UPDATE credential_epoch SET epoch = epoch + 1"

# Provisioning: a robot that already reported (with authentication off) keeps its key and history. $3: its
# id's skeleton (app.auth.lookalikes).
PROVISION_ROBOT = """
INSERT INTO robots AS r (robot_id, tags, id_skeleton) VALUES ($1, $2, $3)
ON CONFLICT (robot_id) DO UPDATE SET tags = excluded.tags, id_skeleton = excluded.id_skeleton
RETURNING robot_key
"""
# Provisionings take turns, so two look-alike ids cannot both pass the check below at once.
LOCK_PROVISIONING = "SELECT pg_advisory_xact_lock(hashtext('fleet-provisioning'))"
SELECT_LOOKALIKE_ROBOT = "SELECT robot_id FROM robots WHERE id_skeleton = $1 AND robot_id <> $2 LIMIT 1"
SELECT_ROBOTS_WITHOUT_SKELETON = "SELECT robot_key, robot_id FROM robots WHERE id_skeleton IS NULL"
SET_ROBOT_SKELETONS = """
UPDATE robots SET id_skeleton = s.id_skeleton
FROM unnest($1::int[], $2::text[]) AS s (robot_key, id_skeleton)
WHERE robots.robot_key = s.robot_key
"""

INSERT_CREDENTIAL = """
INSERT INTO credentials (kind, name, robot_key, scopes, robot_ids, fleet_tag, token_hash, token_prefix, broker_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING credential_id, created_at
"""

# Rotation: the robot's live tokens stop working at $2 (unless they already stop sooner).
EXPIRE_ROBOT_TOKENS = """
UPDATE credentials SET expires_at = $2
WHERE robot_key = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
"""

# A robot with a token that still works: provisioning it again would issue a second one (rotate instead).
SELECT_LIVE_ROBOT_TOKEN = f"""
SELECT 1 FROM credentials WHERE robot_key = $1 AND {LIVE_CREDENTIAL}
LIMIT 1
"""

# Decommissioning: the robot's row is locked, its tokens revoked, what is derived from it forgotten and, if asked,
# its history deleted (the robot's row last: its credentials go with it).
LOCK_ROBOT = "SELECT robot_key FROM robots WHERE robot_id = $1 FOR UPDATE"
REVOKE_ROBOT_TOKENS = "UPDATE credentials SET revoked_at = now() WHERE robot_key = $1 AND revoked_at IS NULL"
DELETE_ROBOT_LATEST = "DELETE FROM robot_latest WHERE robot_key = $1"
DELETE_ROBOT_ANCHORS = "DELETE FROM alert_anchors WHERE robot_id = $1"
DELETE_ROBOT_READINGS = (
    "DELETE FROM telemetry WHERE robot_key = $1",
    "DELETE FROM telemetry_15m WHERE robot_key = $1",
)
DELETE_ROBOT_ALERTS = "DELETE FROM alerts WHERE robot_id = $1"  # and their webhook deliveries, by cascade
DELETE_ROBOT = "DELETE FROM robots WHERE robot_key = $1"  # and its credentials, by cascade

REVOKE_CREDENTIAL = """
UPDATE credentials SET revoked_at = now() WHERE credential_id = $1 AND revoked_at IS NULL
RETURNING credential_id
"""

SELECT_CREDENTIALS = """
SELECT c.credential_id, c.kind, c.name, r.robot_id, c.scopes, c.robot_ids, c.fleet_tag, c.token_prefix,
       c.created_at, c.expires_at, c.revoked_at
FROM credentials c
LEFT JOIN robots r USING (robot_key)
ORDER BY c.credential_id
"""

SELECT_ROBOT_KEY_AND_TAGS = "SELECT robot_key, tags FROM robots WHERE robot_id = $1"
SELECT_ROBOT_TAGS = "SELECT robot_id, tags FROM robots WHERE robot_id = ANY($1::text[])"
SELECT_ALL_ROBOT_TAGS = "SELECT robot_id, tags FROM robots"


# --- retention -----------------------------------------------------------------------------------------------

# The edition serving: `timescale` (the community edition, which the migrations need) or `apache`.
SHOW_TIMESCALEDB_LICENSE = "SHOW timescaledb.license"
# The jobs the database's scheduler runs for the service (ids from 1000; lower ones are TimescaleDB's own), with
# how their runs went. TimescaleDB says "never" as -infinity, which asyncpg would read as the year 1: NULL here.
SELECT_JOBS = """
SELECT j.job_id, j.proc_name || coalesce(' on ' || j.hypertable_name, '') AS name, j.scheduled,
       CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END, s.last_run_status,
       CASE WHEN isfinite(s.last_successful_finish) THEN s.last_successful_finish END,  -- -infinity: never
       coalesce(s.total_runs, 0), coalesce(s.total_failures, 0),
       CASE WHEN isfinite(s.next_start) THEN s.next_start END
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s USING (job_id)
WHERE j.job_id >= 1000
ORDER BY j.job_id
"""

# The columnstore policy on the readings (migration 016), if any: how old a chunk is when it is converted.
SELECT_COLUMNSTORE_AFTER = """
SELECT config ->> 'compress_after', scheduled FROM timescaledb_information.jobs
WHERE proc_name = 'policy_compression' AND hypertable_name = 'telemetry'
"""
# One process at a time compares and sets the retention jobs (processes start together).
LOCK_RETENTION = "SELECT pg_advisory_xact_lock(hashtext('fleet-retention'))"
# Retention as the database's own jobs: one policy per hypertable the readings fill (the minute aggregate's
# included). A new or changed job runs at once, then hourly: chunks are a day long, so each goes within an hour of
# expiring.
SELECT_RETENTION_POLICIES = """
SELECT hypertable_name, (config ->> 'drop_after')::interval FROM timescaledb_information.jobs
WHERE proc_name = 'policy_retention'
"""
REMOVE_RETENTION_POLICY = "SELECT remove_retention_policy($1::text::regclass, if_exists => true)"
ADD_RETENTION_POLICY = """
SELECT add_retention_policy($1::text::regclass, drop_after => $2::interval, schedule_interval => INTERVAL '1 hour',
                            initial_start => now())
"""

# --- alerts --------------------------------------------------------------------------------------------------

RULE_COLUMNS = "rule_id, name, condition::text AS condition, robot_id, fleet_tag, enabled, created_at, updated_at"
INSERT_RULE = f"""
INSERT INTO alert_rules (name, kind, robot_id, fleet_tag, condition, enabled, positions)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
RETURNING {RULE_COLUMNS}
"""
UPDATE_RULE = f"""
UPDATE alert_rules
SET name = $2, kind = $3, robot_id = $4, fleet_tag = $5, condition = $6::jsonb, enabled = $7, positions = $8,
    updated_at = now()
WHERE rule_id = $1
RETURNING {RULE_COLUMNS}
"""
DELETE_RULE = "DELETE FROM alert_rules WHERE rule_id = $1 RETURNING rule_id"
# Rule changes take turns (alert rounds only read, and are not blocked), so the totals below stay true to COMMIT.
LOCK_RULES = "LOCK TABLE alert_rules IN SHARE ROW EXCLUSIVE MODE"
# How many rules and geofence positions there are, leaving out the rule being replaced ($1; 0 for a new one).
SELECT_RULE_TOTALS = "SELECT count(*), coalesce(sum(positions), 0) FROM alert_rules WHERE rule_id <> $1"
SELECT_RULE = f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE rule_id = $1"
SELECT_RULES = f"SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY rule_id"
SELECT_RULES_PAGE = f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE rule_id > $1 ORDER BY rule_id LIMIT $2"
# Moved in the transaction of every rule change; each process polls it and reloads its rules when it moves.
BUMP_RULES_EPOCH = "UPDATE alert_rules_epoch SET epoch = epoch + 1"
SELECT_RULES_EPOCH = "SELECT epoch FROM alert_rules_epoch"

# Every alert transition is announced on this channel (the webhook body as payload), in its transaction, so every
# API process streams it to its subscribers at COMMIT.
ALERT_CHANNEL = "fleet_alerts"

ALERT_COLUMNS = (
    "alert_id, rule_id, rule_name, kind, robot_id, reason, opened_at, acknowledged_at, acknowledged_by, note, "
    "resolved_at, resolution, sequence"
)
RESOLVE_RULE_ALERTS = f"""
UPDATE alerts SET resolved_at = now(), resolution = $2, sequence = sequence + 1
WHERE rule_id = $1 AND resolved_at IS NULL
RETURNING {ALERT_COLUMNS}
"""
RESOLVE_ROBOT_ALERTS = f"""
UPDATE alerts SET resolved_at = now(), resolution = $2, sequence = sequence + 1
WHERE robot_id = $1 AND resolved_at IS NULL
RETURNING {ALERT_COLUMNS}
"""
ACKNOWLEDGE_ALERT = f"""
UPDATE alerts SET acknowledged_at = now(), acknowledged_by = $2, note = $3, sequence = sequence + 1
WHERE alert_id = $1 AND resolved_at IS NULL AND acknowledged_at IS NULL
RETURNING {ALERT_COLUMNS}
"""
# $1 the alerts, $4 the robots a limited key sees (NULL: any). Rows locked in id order: two calls on overlapping
# sets wait for each other instead of deadlocking.
ACKNOWLEDGE_ALERTS = f"""
WITH target AS (
  SELECT alert_id FROM alerts
  WHERE alert_id = ANY($1::bigint[]) AND resolved_at IS NULL AND acknowledged_at IS NULL
    AND ($4::text[] IS NULL OR robot_id = ANY($4))
  ORDER BY alert_id
  FOR UPDATE
)
UPDATE alerts a SET acknowledged_at = now(), acknowledged_by = $2, note = $3, sequence = a.sequence + 1
FROM target t
WHERE a.alert_id = t.alert_id AND a.resolved_at IS NULL AND a.acknowledged_at IS NULL
RETURNING {", ".join(f"a.{column}" for column in ALERT_COLUMNS.split(", "))}
"""
SELECT_ALERT = f"SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_id = $1"
# Newest first. $2 state, $3 robot, $4 kind, $5 the robots a limited key sees (NULL: no filter), $7 rule, opened in
# [$8, $9).
SELECT_ALERTS_PAGE = f"""
SELECT {ALERT_COLUMNS} FROM alerts
WHERE alert_id < $1
  AND CASE $2::text
        WHEN 'active' THEN resolved_at IS NULL AND acknowledged_at IS NULL
        WHEN 'acknowledged' THEN resolved_at IS NULL AND acknowledged_at IS NOT NULL
        WHEN 'resolved' THEN resolved_at IS NOT NULL
        ELSE true
      END
  AND ($3::text IS NULL OR robot_id = $3)
  AND ($4::text IS NULL OR kind = $4)
  AND ($5::text[] IS NULL OR robot_id = ANY($5))
  AND ($7::int IS NULL OR rule_id = $7)
  AND ($8::timestamptz IS NULL OR opened_at >= $8)
  AND ($9::timestamptz IS NULL OR opened_at < $9)
ORDER BY alert_id DESC
LIMIT $6
"""
SELECT_OPEN_ALERTS = "SELECT rule_id, robot_id FROM alerts WHERE resolved_at IS NULL AND rule_id IS NOT NULL"
# What the timer-driven rules look at: each robot's tags, when its latest reading arrived, and its status.
SELECT_ALERT_SNAPSHOT = """
SELECT r.robot_id, r.tags, l.received_at, l.status::text AS status
FROM robots r JOIN robot_latest l USING (robot_key)
"""

# An alert round (app.alerts.engine): one process at a time, the others skip it. It follows the readings from the
# position the last round reached to every reading whose transaction has ended, and moves the position in the
# same transaction: a round that fails or dies leaves it where it was, for the next round of any process.
TRY_ROUND_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('fleet-alert-round'))"
START_ROUND = f"SELECT derived_xid, {COMMITTED_BELOW} AS settled FROM derived_state FOR UPDATE"
SET_DERIVED_XID = "UPDATE derived_state SET derived_xid = $1"
# The latest state of the robots in $1, as rows the reading checks take (app.ingest.reading.Row), with tags.
SELECT_LATEST_ROWS = f"""
SELECT r.robot_id, {", ".join(f"l.{c}" for c in _READING_COLUMNS_AS_TEXT.split(", "))}, r.tags, l.received_at
FROM robot_latest l JOIN robots r USING (robot_key)
WHERE l.robot_key = ANY($1::integer[])
"""
SELECT_ANCHORS = "SELECT robot_id, within_m, latitude, longitude, since FROM alert_anchors"
UPSERT_ANCHORS = """
INSERT INTO alert_anchors (robot_id, within_m, latitude, longitude, since)
SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[], $4::float8[], $5::timestamptz[])
ON CONFLICT (robot_id, within_m) DO UPDATE
SET latitude = excluded.latitude, longitude = excluded.longitude, since = excluded.since
"""

# --- webhooks ------------------------------------------------------------------------------------------------

WEBHOOK_COLUMNS = "webhook_id, url, description, created_at"
INSERT_WEBHOOK = f"INSERT INTO webhooks (url, description, secret) VALUES ($1, $2, $3) RETURNING {WEBHOOK_COLUMNS}"
SELECT_WEBHOOKS = f"SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY webhook_id"
DELETE_WEBHOOK = "DELETE FROM webhooks WHERE webhook_id = $1 RETURNING webhook_id"
WEBHOOK_EXISTS = "SELECT EXISTS (SELECT 1 FROM webhooks WHERE webhook_id = $1)"
# Due deliveries, each leased for $2 s: a process that dies mid-attempt leaves it to any other after the lease.
# SKIP LOCKED: processes claiming at once take different deliveries.
CLAIM_DELIVERIES = """
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
FROM webhooks w
WHERE w.webhook_id = d.webhook_id
  AND d.delivery_id IN (
      SELECT delivery_id FROM webhook_deliveries
      WHERE state = 'pending' AND next_attempt_at <= now()
      ORDER BY next_attempt_at
      LIMIT $1
      FOR UPDATE SKIP LOCKED)
RETURNING d.delivery_id, d.attempts, d.body, w.url, w.secret
"""
MARK_DELIVERED = """
UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now(), last_status = $2, last_error = NULL
WHERE delivery_id = $1
"""
# $4: seconds until the next attempt; past $5 attempts the delivery is given up ('failed').
MARK_ATTEMPT_FAILED = """
UPDATE webhook_deliveries
SET state = CASE WHEN attempts >= $5 THEN 'failed' ELSE 'pending' END,
    next_attempt_at = now() + make_interval(secs => $4), last_status = $2, last_error = $3
WHERE delivery_id = $1
"""
SELECT_DELIVERIES_PAGE = """
SELECT delivery_id, webhook_id, alert_id, event, state, attempts, next_attempt_at, last_status, last_error,
       created_at, delivered_at
FROM webhook_deliveries
WHERE webhook_id = $1 AND delivery_id < $2
ORDER BY delivery_id DESC
LIMIT $3
"""

# A round's transitions in one transaction, a statement per step whatever their number. Openings skip rules
# deleted since the round read them (the join), and any (rule, robot) already open: the partial unique index
# alerts_one_open makes a second opening, by any process, a no-op (the conflict).
OPEN_ALERTS = f"""
INSERT INTO alerts (rule_id, rule_name, kind, robot_id, reason)
SELECT u.rule_id, u.rule_name, u.kind, u.robot_id, u.reason
FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(rule_id, rule_name, kind, robot_id, reason)
JOIN alert_rules r USING (rule_id)
ON CONFLICT (rule_id, robot_id) WHERE resolved_at IS NULL DO NOTHING
RETURNING {ALERT_COLUMNS}
"""
RESOLVE_ALERTS = f"""
UPDATE alerts a SET resolved_at = now(), resolution = u.resolution, sequence = a.sequence + 1
FROM unnest($1::int[], $2::text[], $3::text[]) AS u(rule_id, robot_id, resolution)
WHERE a.rule_id = u.rule_id AND a.robot_id = u.robot_id AND a.resolved_at IS NULL
RETURNING {", ".join(f"a.{column}" for column in ALERT_COLUMNS.split(", "))}
"""
QUEUE_EVENT_DELIVERIES = """
INSERT INTO webhook_deliveries (webhook_id, alert_id, event, body)
SELECT w.webhook_id, e.alert_id, e.event, e.body
FROM unnest($1::bigint[], $2::text[], $3::text[]) AS e(alert_id, event, body) CROSS JOIN webhooks w
"""
NOTIFY_ALERTS = f"SELECT pg_notify('{ALERT_CHANNEL}', body) FROM unnest($1::text[]) AS body"
