"""The rollups' SQL, as named constants: the quarter-hour periods (generated from the statuses), the passes, the
snapshot, and the data lifecycle. Values go in only as $n parameters."""

from __future__ import annotations

from app.model.reading import STATUSES
from app.platform.notices import COMMITTED_BELOW

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


PERIOD = "interval '15 minutes'"
STATUS_SECONDS = tuple(f"{s}_s" for s in STATUSES)

# Readings (robot_key, time, status, latitude, longitude, period) -> the same, plus held_s, the seconds the
# reading's status lasts until the next reading of its period (NULL for the last), at most {caps}.
HELD_IN_PERIOD = """
SELECT *, CASE WHEN next_at IS NOT NULL THEN greatest(0, extract(epoch FROM least(next_at, {caps}) - time))::float8
          END AS held_s
FROM (
    SELECT *, lead(time) OVER (PARTITION BY robot_key, period ORDER BY time) AS next_at
    FROM {readings} r
) n
"""


_PERIOD_COLUMNS = ", ".join(
    (
        "robot_key, period, first_at, last_at, last_status",
        *STATUSES,
        *STATUS_SECONDS,
        "located, first_latitude, first_longitude, last_latitude, last_longitude, metres",
    )
)


_SET_PERIOD = ", ".join(f"{c} = excluded.{c}" for c in _PERIOD_COLUMNS.split(", ")[2:])


# Per period of a robot: its first and last reading, the last one's status, readings and seconds per status.
STATUS_AGGREGATES = ", ".join(
    (
        "period, min(time), max(time), last(status, time)",
        *(f"count(*) FILTER (WHERE status = '{s}')" for s in STATUSES),
        *(f"coalesce(sum(held_s) FILTER (WHERE status = '{s}'), 0)" for s in STATUSES),
    )
)


# Per period of a robot: its readings with a location, the first and last location, the path between them.
PATH_AGGREGATES = """
    count(latitude),
    first(latitude, time) FILTER (WHERE latitude IS NOT NULL),
    first(longitude, time) FILTER (WHERE latitude IS NOT NULL),
    last(latitude, time) FILTER (WHERE latitude IS NOT NULL),
    last(longitude, time) FILTER (WHERE latitude IS NOT NULL),
    coalesce(sum(step_m), 0)
"""


# ... -> the same, plus step_m, the metres from the previous reading with a location in the period.
STEP_IN_PERIOD = """
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
    held = HELD_IN_PERIOD.format(caps="time + $3 * interval '1 second'", readings=readings)
    return f"""
INSERT INTO telemetry_15m AS p ({_PERIOD_COLUMNS})
SELECT robot_key, {STATUS_AGGREGATES}, {PATH_AGGREGATES}
FROM ({STEP_IN_PERIOD.format(readings=f"({held})")}) s
GROUP BY robot_key, period
ON CONFLICT (robot_key, period) {on_conflict}
"""


ROLL_UP_LATE_PERIODS = _roll_up_periods(_LATE_PERIOD_READINGS)


_FRESH_HELD = HELD_IN_PERIOD.format(caps="time + $3 * interval '1 second'", readings=_FRESH_PERIOD_READINGS)


APPEND_FRESH_PERIODS = f"""
WITH fresh AS MATERIALIZED (
    SELECT robot_key, {STATUS_AGGREGATES}, {PATH_AGGREGATES}
    FROM ({STEP_IN_PERIOD.format(readings=f"({_FRESH_HELD})")}) s
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
