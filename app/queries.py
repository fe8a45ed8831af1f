"""Every SQL statement the service runs, as named constants. Values go in only as $n parameters."""

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

# --- health --------------------------------------------------------------------------------------------------

PING = "SELECT 1"

# --- ingest --------------------------------------------------------------------------------------------------

TELEMETRY_TABLE = "telemetry"
STAGING_TABLE = "telemetry_staging"
TELEMETRY_COLUMNS = (
    "robot_key",
    "time",
    "latitude",
    "longitude",
    "battery_level",
    "battery_voltage",
    "status",
    "seq",
)

REGISTER_ROBOTS = """
INSERT INTO robots (robot_id)
SELECT unnest($1::text[])
ON CONFLICT (robot_id) DO NOTHING
"""

SELECT_ROBOT_KEYS = "SELECT robot_id, robot_key FROM robots WHERE robot_id = ANY($1::text[])"

# Only the slow path (a batch that hit the unique index) uses the staging table.
CREATE_STAGING_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS telemetry_staging (LIKE telemetry) ON COMMIT DELETE ROWS
"""

INSERT_STAGED_SKIP_DUPLICATES = """
INSERT INTO telemetry SELECT * FROM telemetry_staging
ON CONFLICT (robot_key, time) DO NOTHING
RETURNING robot_key, time
"""

# Moves each robot's latest state forward; the WHERE clause is what keeps a late reading from regressing it.
UPDATE_LATEST = """
UPDATE robots AS r
SET last_seen = v.time, latitude = v.latitude, longitude = v.longitude, battery_level = v.battery_level,
    battery_voltage = v.battery_voltage, status = v.status::robot_status, seq = v.seq
FROM unnest($1::integer[], $2::timestamptz[], $3::float8[], $4::float8[], $5::real[], $6::real[],
            $7::text[], $8::bigint[])
     AS v(robot_key, time, latitude, longitude, battery_level, battery_voltage, status, seq)
WHERE r.robot_key = v.robot_key AND (r.last_seen IS NULL OR v.time > r.last_seen)
"""

# --- history -------------------------------------------------------------------------------------------------

SELECT_ROBOT_KEY = "SELECT robot_key FROM robots WHERE robot_id = $1"

# Keyset page, newest first: $2 <= time < $3, and time < $4 (the cursor). The (robot_key, time DESC) index
# returns rows already in order, so LIMIT stops after $5 rows.
SELECT_HISTORY_PAGE = """
SELECT time, latitude, longitude, battery_level, battery_voltage, status::text, seq
FROM telemetry
WHERE robot_key = $1 AND time >= $2 AND time < $3 AND time < $4
ORDER BY time DESC
LIMIT $5
"""
