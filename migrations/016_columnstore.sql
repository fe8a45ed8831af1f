-- TimescaleDB's columnstore on the readings (issue 21), where the community edition serves (the Apache edition
-- has none, and keeps the row store). Segmented by robot, so one robot's readings of a chunk are stored together
-- and its history reads one segment; ordered by time, newest first, as history and the latest state ask.
-- A chunk (one day) is converted once it is a day old, so nearly every late reading and replay meets a row-store
-- chunk; those older still go in (TimescaleDB checks the unique key against the columnstore).
DO $$
BEGIN
    IF current_setting('timescaledb.license', true) = 'timescale' THEN
        ALTER TABLE telemetry SET (
            timescaledb.enable_columnstore,
            timescaledb.segmentby = 'robot_key',
            timescaledb.orderby = 'time DESC'
        );
        CALL add_columnstore_policy('telemetry', after => INTERVAL '1 day', if_not_exists => true);
    ELSE
        RAISE NOTICE 'TimescaleDB Apache edition: the readings stay in the row store (no columnstore)';
    END IF;
END
$$;
