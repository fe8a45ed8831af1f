-- The per-minute rollup becomes a TimescaleDB continuous aggregate (issue 21): the same columns, kept by the
-- database instead of a pass of the service's. Real-time: minutes past the last refresh are aggregated from the
-- readings when read, so the view never lags what is stored.
-- Queries of the service's do not lean on that real-time part, nor on a refresh having seen each late reading:
-- the aggregate's watermark is read from the catalogue, outside a query's snapshot (a refresh committing while a
-- query ran made its materialized minutes invisible and its real-time ones skipped: 0 readings, seen). So
-- refresh_minutes records in rollup_state, in the snapshot a query reads, how far its refresh went (refreshed_to)
-- and a position below which every reading had been stored before the refresh began (refreshed_xid); a query
-- reads minutes before refreshed_to from the aggregate, except those holding a reading stored at or after
-- refreshed_xid, and every other minute from the readings.
-- The columnstore and the job scheduler need the community edition; scripts/db.sh builds it.
DO $$
BEGIN
    IF current_setting('timescaledb.license', true) IS DISTINCT FROM 'timescale' THEN
        RAISE EXCEPTION 'TimescaleDB community edition needed (timescaledb.license = timescale): the minute rollup '
            'is a continuous aggregate. scripts/db.sh up builds and configures it.';
    END IF;
END
$$;

DROP TABLE telemetry_1m;
CREATE MATERIALIZED VIEW telemetry_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT robot_key, time_bucket(INTERVAL '1 minute', time) AS minute,
       count(*) AS readings,
       sum(battery_level) AS battery_sum, min(battery_level) AS battery_min, max(battery_level) AS battery_max,
       sum(battery_voltage) AS voltage_sum, count(battery_voltage) AS voltage_count,
       min(battery_voltage) AS voltage_min, max(battery_voltage) AS voltage_max,
       -- the last reading with a location in the minute, and that location
       max(time) FILTER (WHERE latitude IS NOT NULL) AS located_at,
       last(latitude, time) FILTER (WHERE latitude IS NOT NULL) AS latitude,
       last(longitude, time) FILTER (WHERE latitude IS NOT NULL) AS longitude,
       count(*) FILTER (WHERE status = 'idle') AS idle, count(*) FILTER (WHERE status = 'moving') AS moving,
       count(*) FILTER (WHERE status = 'working') AS working,
       count(*) FILTER (WHERE status = 'charging') AS charging, count(*) FILTER (WHERE status = 'error') AS error
FROM telemetry
GROUP BY robot_key, minute
WITH NO DATA;
-- Chunks as long as the readings' (a day, not ten times theirs), so retention drops both alike.
SELECT set_chunk_time_interval(
    (SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)::regclass
     FROM timescaledb_information.continuous_aggregates WHERE view_name = 'telemetry_1m'),
    INTERVAL '1 day'
);

-- NULL: never refreshed (every minute is then aggregated from the readings when read).
ALTER TABLE rollup_state ADD COLUMN refreshed_xid bigint, ADD COLUMN refreshed_to timestamptz;

-- The refresh job: the position first (every transaction below it has ended, so the refresh, which starts after,
-- sees each of their readings), then the refresh of every minute before the current one that a write touched,
-- however old (no window start: a late upload days back is refreshed too), then what it covered, in a
-- transaction of its own. greatest(): a refresh that finishes after a later one leaves the later one's record.
CREATE PROCEDURE refresh_minutes(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    settled bigint := txid_snapshot_xmin(txid_current_snapshot());
    until timestamptz := time_bucket(INTERVAL '1 minute', now());
BEGIN
    COMMIT;
    CALL refresh_continuous_aggregate('telemetry_1m', NULL, until);
    UPDATE rollup_state
    SET refreshed_xid = greatest(refreshed_xid, settled), refreshed_to = greatest(refreshed_to, until);
    COMMIT;
END
$$;
SELECT add_job('refresh_minutes', INTERVAL '30 seconds', fixed_schedule => false);
