"""The telemetry feature's SQL, as named constants: the group commit, history, buckets, the latest state and the
export. Values go in only as $n parameters; column lists come from the reading's one declaration."""

from __future__ import annotations

from app.model.reading import COLUMN_NAMES, COLUMNS, STATUSES
from app.platform.notices import COMMIT_CHANNEL, COMMITTED_BELOW

_READING_COLUMNS = ", ".join(COLUMN_NAMES)


READING_COLUMNS_AS_TEXT = ", ".join(f"{name}::text" if name == "status" else name for name in COLUMN_NAMES)


TELEMETRY_TABLE = "telemetry"


STAGING_TABLE = "telemetry_staging"


# stored_at and stored_xid are left to their defaults: the transaction's start and its id.
TELEMETRY_COLUMNS = ("robot_key", *COLUMN_NAMES)


SELECT_TRANSACTION_TIME = f"""
SELECT transaction_timestamp(), txid_current(), pg_notify('{COMMIT_CHANNEL}', 'f ' || $1::text || ' ' || txid_current())
"""


# A relay checkpoint on the same channel: "c <instance> <position>", every transaction below the position ended
# before the notice was sent, so their notices arrive before it (notices arrive in commit order).
SEND_CHECKPOINT = f"SELECT pg_notify('{COMMIT_CHANNEL}', $1::text || ' ' || {COMMITTED_BELOW})"


SELECT_COMMITTED_BELOW = f"SELECT {COMMITTED_BELOW}"


# The flushes stored at or after a position, by their positions (the relay's catch-up after a LISTEN was lost).
SELECT_FLUSHES_SINCE = "SELECT DISTINCT stored_xid FROM telemetry WHERE stored_xid >= $1 ORDER BY 1"


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


# Keyset page, newest first: $2 <= time < $3, and time < $4 (the cursor). The (robot_key, time DESC) index
# returns rows already in order, so LIMIT stops after $5 rows.
SELECT_HISTORY_PAGE = f"""
SELECT {READING_COLUMNS_AS_TEXT}
FROM telemetry
WHERE robot_key = $1 AND time >= $2 AND time < $3 AND time < $4
ORDER BY time DESC
LIMIT $5
"""


# Live-stream resume: readings stored after a stream position ($1 stored_at, $2 robot_id, $3 time), in the
# stream's order, for every robot or those in $4, at most $5. $6 is the oldest stored_at a resume goes back to.
# The BRIN index on stored_at skips the block ranges of older rows in every chunk.
SELECT_STORED_SINCE = f"""
SELECT r.robot_id, t.stored_at, {", ".join("t." + c for c in READING_COLUMNS_AS_TEXT.split(", "))}
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
SELECT r.robot_id, t.stored_at, {", ".join("t." + c for c in READING_COLUMNS_AS_TEXT.split(", "))}
FROM telemetry t JOIN robots r USING (robot_key)
WHERE t.stored_xid = $1
ORDER BY r.robot_id, t.time
"""


# $1 status or NULL, $2 battery_below or NULL, $3 online cutoff (received_at >= $3 is online: the server's
# clock, not the robot's), $4 online filter or NULL, $5 robot_id or NULL. Reads only the registry and latest
# state, one row per robot. first_seen is never after the first reading's arrival (registration follows it).
SELECT_ROBOT_STATES = f"""
SELECT {", ".join(f"l.{c}" for c in READING_COLUMNS_AS_TEXT.split(", "))},
       r.robot_id, least(r.first_seen, l.received_at), l.received_at >= $3 AS online, r.tags, l.received_at
FROM robot_latest l
JOIN robots r USING (robot_key)
WHERE ($1::text IS NULL OR l.status = $1::robot_status)
  AND ($2::float8 IS NULL OR l.battery_level < $2)
  AND ($4::boolean IS NULL OR (l.received_at >= $3) = $4)
  AND ($5::text IS NULL OR r.robot_id = $5)
ORDER BY r.robot_id
"""


# Status counts, generated from the statuses (a new status is one change, in the model): per reading, per bucket
# of readings, per bucket of minutes, and with 0 for an empty bucket.
_STATUS_FLAGS = ", ".join(f"(status = '{s}')::integer" for s in STATUSES)
_STATUS_COUNTS = ", ".join(f"count(*) FILTER (WHERE status = '{s}') AS {s}" for s in STATUSES)
_STATUS_SUMS = ", ".join(f"sum({s}) AS {s}" for s in STATUSES)
_STATUS_MINUTES = ", ".join(f"{s}::integer" for s in STATUSES)
_STATUS_OR_ZERO = ", ".join(f"coalesce(f.{s}, 0) AS {s}" for s in STATUSES)

# The end both bucket statements share: every bucket start of [$4, $5), and the filled buckets joined to them.
# The series is generated on local time: generate_series has no zone in PostgreSQL 15.
_BUCKET_SERIES = f"""
series AS (
    SELECT local_start AT TIME ZONE $3::text AS bucket
    FROM generate_series(
        time_bucket($2::interval, $4::timestamptz AT TIME ZONE $3::text),
        ($5::timestamptz - interval '1 microsecond') AT TIME ZONE $3::text,
        $2::interval
    ) AS local_start
)
SELECT s.bucket, coalesce(f.readings, 0) AS readings,
       f.battery_avg, f.battery_min, f.battery_max, f.voltage_avg, f.voltage_min, f.voltage_max,
       f.latitude, f.longitude, {_STATUS_OR_ZERO}
FROM series s
LEFT JOIN filled f USING (bucket)
ORDER BY s.bucket
"""

# One row per time bucket of one robot over [$4, $5), every bucket included: those without readings have a count
# of 0 and nulls, so a chart shows a gap as a gap. $2 bucket width, $3 time zone name. Buckets are cut on the
# zone's wall clock (time_bucket with the zone), so day buckets follow local days, DST included (the Apache
# edition had no time_bucket_gapfill). Readings per status give the share of the bucket in it.
SELECT_BUCKETS = f"""
WITH filled AS (
    SELECT time_bucket($2::interval, time, $3::text) AS bucket,
           count(*) AS readings,
           avg(battery_level) AS battery_avg, min(battery_level) AS battery_min, max(battery_level) AS battery_max,
           avg(battery_voltage) AS voltage_avg, min(battery_voltage) AS voltage_min,
           max(battery_voltage) AS voltage_max,
           last(latitude, time) FILTER (WHERE latitude IS NOT NULL) AS latitude,
           last(longitude, time) FILTER (WHERE latitude IS NOT NULL) AS longitude,
           {_STATUS_COUNTS}
    FROM telemetry
    WHERE robot_key = $1 AND time >= $4 AND time < $5
    GROUP BY bucket
), {_BUCKET_SERIES}"""

# The same buckets from the minute aggregate where it is current ($6 to $7, materialized minutes), and from the
# readings elsewhere and in minutes holding readings stored since its refresh (stored_xid >= $8).
SELECT_BUCKETS_ROLLED_UP = f"""
WITH stale AS MATERIALIZED (
    SELECT DISTINCT time_bucket('1 minute', time) AS minute
    FROM telemetry
    WHERE robot_key = $1 AND time >= $6 AND time < $7 AND stored_xid >= $8
), parts AS (
    SELECT time_bucket($2::interval, minute, $3::text) AS bucket, readings::integer, battery_sum, battery_min,
           battery_max, voltage_sum, voltage_count::integer, voltage_min, voltage_max, located_at, latitude,
           longitude, {_STATUS_MINUTES}
    FROM telemetry_1m m
    WHERE robot_key = $1 AND minute >= $6 AND minute < $7
      AND NOT EXISTS (SELECT FROM stale s WHERE s.minute = m.minute)
    UNION ALL
    SELECT time_bucket($2::interval, time, $3::text), 1, battery_level, battery_level, battery_level,
           battery_voltage, (battery_voltage IS NOT NULL)::integer, battery_voltage, battery_voltage,
           CASE WHEN latitude IS NOT NULL THEN time END, latitude, longitude, {_STATUS_FLAGS}
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
           {_STATUS_SUMS}
    FROM parts
    GROUP BY bucket
), {_BUCKET_SERIES}"""


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


DELETE_ROBOT_LATEST = "DELETE FROM robot_latest WHERE robot_key = $1"


DELETE_ROBOT_READINGS = (
    "DELETE FROM telemetry WHERE robot_key = $1",
    "DELETE FROM telemetry_15m WHERE robot_key = $1",
)
