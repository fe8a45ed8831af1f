"""The fleet questions' SQL, as named constants: path length and time per status, from the readings or the
rollups. Values go in only as $n parameters."""

from __future__ import annotations

from app.model.reading import STATUSES
from app.rollups.queries import (
    HELD_IN_PERIOD,
    PATH_AGGREGATES,
    PERIOD,
    STATUS_AGGREGATES,
    STATUS_SECONDS,
    STEP_IN_PERIOD,
)

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
    SELECT robot_key, period, first_at, last_at, last_status, {", ".join((*STATUSES, *STATUS_SECONDS))}
    FROM stored
    UNION ALL
    SELECT robot_key, {STATUS_AGGREGATES}
    FROM ({HELD_IN_PERIOD.format(caps=_CAPS.format(at="time"), readings="readings")}) h
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
    SELECT robot_key, period, {PATH_AGGREGATES}
    FROM ({STEP_IN_PERIOD.format(readings="(SELECT * FROM readings WHERE latitude IS NOT NULL)")}) s
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
